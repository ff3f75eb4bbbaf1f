import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isMappingOf, isTcgCodeBuffer, parseSmaps, parseSmapsRollup, processMemoryOf } from '../../bench/smaps.js';

const RAM = '/tmp/vmfork-bench-x/templates/bench/ram';

// Trimmed from a real QEMU 7.2 child's /proc/PID/smaps: binary, the template RAM file (MAP_PRIVATE), the TCG code
// buffer (anonymous rwx), the heap.
const SMAPS = `55d0b8a4b000-55d0b8c00000 r-xp 00000000 fe:00 1311 /usr/bin/qemu-system-x86_64
Size:               1748 kB
Rss:                1500 kB
Pss:                 300 kB
Private_Dirty:         0 kB
VmFlags: rd ex mr mw me dw sd
7f1c00000000-7f1c20000000 rw-p 00000000 fe:00 98765 ${RAM}
Size:             524288 kB
KernelPageSize:        4 kB
Rss:               40960 kB
Pss:                8192 kB
Shared_Clean:      36864 kB
Private_Dirty:      4096 kB
THPeligible:    0
VmFlags: rd wr mr mw me ac sd
7f408c000000-7f408e000000 rwxp 00000000 00:00 0 
Size:              32768 kB
Rss:               26000 kB
Pss:               26000 kB
Private_Dirty:     26000 kB
7f40cc000000-7f40cd000000 rw-p 00000000 00:00 0                          [heap]
Size:               4096 kB
Rss:                3000 kB
Pss:                3000 kB
Private_Dirty:      3000 kB
`;

const ROLLUP = `55d0b8a4b000-7ffe9e446000 ---p 00000000 00:00 0                          [rollup]
Rss:               71460 kB
Pss:               45000 kB
Pss_Anon:          33096 kB
Private_Dirty:     33096 kB
`;

test('parseSmaps reads headers (perms, path or anonymous) and kB fields, skipping VmFlags', () => {
  const maps = parseSmaps(SMAPS);
  assert.equal(maps.length, 4);
  assert.deepEqual(maps.map((m) => m.perms), ['r-xp', 'rw-p', 'rwxp', 'rw-p']);
  assert.deepEqual(maps.map((m) => m.path), ['/usr/bin/qemu-system-x86_64', RAM, '', '[heap]']);
  assert.equal(maps[1]?.kib.Private_Dirty, 4096);
  assert.equal(maps[1]?.kib.THPeligible, undefined);
  assert.equal(maps[1]?.end, 0x7f1c20000000n);
});

test('parseSmapsRollup reads the kB fields of the rollup', () => {
  assert.deepEqual(parseSmapsRollup(ROLLUP), { Rss: 71460, Pss: 45000, Pss_Anon: 33096, Private_Dirty: 33096 });
});

test('a RAM file mapping is recognised also once the file is unlinked', () => {
  const [, ram] = parseSmaps(SMAPS);
  assert.ok(ram && isMappingOf(RAM)(ram));
  assert.ok(isMappingOf(RAM)({ ...ram, path: `${RAM} (deleted)` }));
  assert.ok(!isMappingOf(`${RAM}2`)(ram));
});

test('only the anonymous rwx mapping is the TCG code buffer', () => {
  assert.deepEqual(parseSmaps(SMAPS).map(isTcgCodeBuffer), [false, false, true, false]);
});

test('processMemoryOf: totals from the rollup, guest RAM and TCG cache from their mappings', () => {
  const m = processMemoryOf(ROLLUP, SMAPS, RAM);
  assert.deepEqual(m, {
    rssKiB: 71460,
    pssKiB: 45000,
    privateDirtyKiB: 33096,
    guestRam: { sizeKiB: 524288, rssKiB: 40960, pssKiB: 8192, privateDirtyKiB: 4096 },
    tcgCache: { sizeKiB: 32768, rssKiB: 26000, pssKiB: 26000, privateDirtyKiB: 26000 },
  });
});

test('a process that does not map the RAM file reports zero guest RAM', () => {
  assert.equal(processMemoryOf(ROLLUP, SMAPS, '/elsewhere/ram').guestRam.pssKiB, 0);
});
