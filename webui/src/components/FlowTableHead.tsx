/** The column headings every flow table shares (dashboard's live flows, the Flows page), so
 *  the two cannot drift; `extra` adds columns after the common six. */
import { th } from '@/components/ui/Misc'

export function FlowTableHead({ extra = [] }: { extra?: string[] }) {
  return (
    <thead>
      <tr>
        <th scope="col" className={th}>Last seen</th>
        <th scope="col" className={th}>Source</th>
        <th scope="col" className={th}>Destination</th>
        <th scope="col" className={th}>Proto</th>
        <th scope="col" className={`${th} text-right`}>Packets</th>
        <th scope="col" className={`${th} text-right`}>Bytes</th>
        {extra.map((name) => (
          <th key={name} scope="col" className={th}>{name}</th>
        ))}
      </tr>
    </thead>
  )
}
