// Child process for the concurrency test: opens the shared store file and allocates leases as fast as it can.
import { openStore } from '../../src/store/db.js';
import { allocateLease } from '../../src/network/leases.js';

const [dbPath = '', network = '', prefix = '', countText = '0'] = process.argv.slice(2);
const db = await openStore(dbPath);
const results: { vm: string; ip?: string; mac?: string; tap?: string; error?: string }[] = [];
for (let i = 0; i < Number(countText); i++) {
  const vm = `${prefix}-${i}`;
  try {
    const l = await allocateLease(db, { network, vmName: vm });
    results.push({ vm, ip: l.ip, mac: l.mac, tap: l.tap });
  } catch (err) {
    results.push({ vm, error: (err as { code?: string }).code ?? String(err) });
  }
}
await db.destroy();
process.stdout.write(JSON.stringify(results));
