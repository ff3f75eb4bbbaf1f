// Child process for the concurrent-open test: opens the store named on its command line (migrating it if needed).
import { openStore } from '../../src/store/db.js';

const db = await openStore(process.argv[2] ?? '');
await db.destroy();
process.stdout.write('opened');
