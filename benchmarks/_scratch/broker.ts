// scratch: start a broker and keep it up until killed; print brokers
import { startLocalBroker } from '../../services/shared/src/kafka/localBroker.ts';
import { writeFileSync } from 'node:fs';
const b = await startLocalBroker({ dataDir: '/tmp/benchprobe/kafka', port: 0 });
writeFileSync('/tmp/benchprobe/brokers', b.brokers.join(','));
console.log(b.brokers, b.pid, b.version);
process.on('SIGTERM', () => { void b.stop().then(() => process.exit(0)); });
setInterval(() => {}, 1000);
