// `npm audit` gate: fail on any high or critical advisory (production and dev packages).
// When the registry's audit endpoint cannot be reached (offline mirrors answer 405/404),
// say so plainly and exit 0: a gate that cannot look is reported, not faked.
import { spawnSync } from 'node:child_process'

const run = spawnSync('npm', ['audit', '--json'], { encoding: 'utf8', cwd: new URL('..', import.meta.url).pathname })
let report
try {
  report = JSON.parse(run.stdout || '{}')
} catch {
  report = { error: { summary: (run.stderr || 'unparseable npm audit output').slice(0, 200) } }
}
if (!report.metadata) {
  const why = report.message ?? report.error?.summary ?? report.error?.code ?? 'no report'
  console.log(`npm audit: the registry's audit endpoint is unavailable here (${String(why).split('\n')[0]}); not checked`)
  process.exit(0)
}
const counts = report.metadata?.vulnerabilities ?? {}
const high = (counts.high ?? 0) + (counts.critical ?? 0)
console.log(`npm audit: ${counts.critical ?? 0} critical, ${counts.high ?? 0} high, ${counts.moderate ?? 0} moderate, ${counts.low ?? 0} low`)
process.exit(high > 0 ? 1 : 0)
