import { test } from 'node:test';
import assert from 'node:assert/strict';
import { screenCmdline, SCREEN_VGA_MEM_MIB, vmChannels, vmPaths } from '../../src/vm/index.js';

// What a screen adds to a VM's spec (docs/console.md): the VGA device, the VNC socket, the kernel's screen console.

test('a VM with a screen boots with console=tty0 ahead of the serial console, which stays /dev/console', () => {
  const line = 'root=/dev/vda rw console=ttyS0 net.ifnames=0 quiet';
  assert.equal(screenCmdline(line), 'root=/dev/vda rw console=tty0 console=ttyS0 net.ifnames=0 quiet');
  assert.equal(screenCmdline(screenCmdline(line)), screenCmdline(line), 'once');
  assert.equal(screenCmdline('root=/dev/vda console=ttyS0,115200n8'), 'root=/dev/vda console=tty0 console=ttyS0,115200n8');
  assert.equal(screenCmdline('root=/dev/vda quiet'), 'root=/dev/vda quiet', 'an image without a serial console is left alone');
});

test("vmChannels: a screen is a VGA device and the VM's own VNC socket; without one, neither key", () => {
  const paths = vmPaths('/var/lib/vmfork/vms', 'desk-1');
  assert.equal(paths.screenSocket, '/var/lib/vmfork/vms/desk-1/vnc.sock');
  assert.equal(paths.consoleSocket, '/var/lib/vmfork/vms/desk-1/con.sock');
  const plain = vmChannels(paths);
  assert.equal('vga' in plain || 'vncSocket' in plain, false);
  assert.deepEqual([vmChannels(paths, { screen: true }).vga, vmChannels(paths, { screen: true }).vncSocket], [{ memMiB: SCREEN_VGA_MEM_MIB }, paths.screenSocket]);
  // a child takes its template's device as it is
  assert.deepEqual(vmChannels(paths, { screen: { memMiB: 8 } }).vga, { memMiB: 8 });
  assert.equal('vga' in vmChannels(paths, { screen: undefined }), false);
});
