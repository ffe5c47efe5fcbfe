/** The API's answer to a rejected rule set, mapped onto the edited rule's fields. */
import type { ApiError } from '@/lib/api-client'
import type { DraftErrors, RuleDraft } from './RuleEditor'

const FIELD: Record<string, keyof RuleDraft> = {
  id: 'id',
  action: 'action',
  src: 'value',
  dst: 'value',
  port: 'value',
  proto: 'value',
  direction: 'direction',
}

/** `index` is the edited rule's position in the PUT body, `id` its id. */
export function draftErrors(error: ApiError, index: number, id: string, kind: RuleDraft['kind']): DraftErrors {
  const out: DraftErrors = {}
  if (error.code === 'validation_error') {
    for (const fe of error.fieldErrors) {
      const [top, at, name] = fe.loc
      if (top === 'rules' && at === index && typeof name === 'string') {
        // `proto` of a port rule is the port-protocol select, not the value
        const field = name === 'proto' && kind === 'port' ? 'portProto' : (FIELD[name] ?? 'form')
        out[field] = fe.msg
      } else if (top === 'default_action') {
        out.form = `Default action: ${fe.msg}`
      } else {
        out.form = `${fe.loc.join('.')}: ${fe.msg}`
      }
    }
    if (Object.keys(out).length === 0) out.form = error.message
    return out
  }
  if (error.code === 'invalid_rule') {
    // "rule 7: bad CIDR ...", "rule 7 overlaps rule 3 (same match)", "duplicate rule id 7"
    const mine = new RegExp(`(^|\\D)${id.replace(/\D/g, '')}(\\D|$)`).test(error.message)
    if (/duplicate rule id/.test(error.message) && mine) out.id = error.message
    else if (mine) out.value = error.message
    else out.form = error.message
    return out
  }
  out.form = error.message
  return out
}
