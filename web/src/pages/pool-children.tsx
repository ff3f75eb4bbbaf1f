import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import { api, call, type PoolChild, type PoolDetail, type TaskAccepted } from '../api';
import { DataTable, ErrorAlert, orDash, seconds, TaskNotice, time, useAction } from '../components';
import { Link } from '../router';

type Outcome = { accepted: TaskAccepted; what: string } | { text: string };

const isClaimed = (vm: PoolChild): boolean => vm.claimedAt !== null || vm.claimedBy !== null;
const vmPath = (name: string) => ({ params: { path: { name } } });

/**
 * A pool's children and what can be done to each. The API claims from a pool, not a named child: "Claim" takes a
 * ready child of the pool (a spare first), as `vmfork pool claim` does. "Refresh" gives a claimed child back (a
 * release is a refresh) or, in a non-persistent pool, powers it off (which refreshes it: docs/pools.md).
 */
export function PoolChildren({ pool }: { pool: PoolDetail }): JSX.Element {
  const [user, setUser] = useState('console');
  const [outcome, setOutcome] = useState<Outcome | null>(null);
  const action = useAction();
  const [busyVm, setBusyVm] = useState<string | null>(null);

  const act = async (vm: string, run: () => Promise<Outcome>): Promise<void> => {
    setBusyVm(vm);
    setOutcome(null);
    const result = await action.run(run);
    setBusyVm(null);
    if (result) setOutcome(result);
  };
  const task = (what: string) => (accepted: TaskAccepted): Outcome => ({ accepted, what });

  const claim = (vm: string) => act(vm, async () => {
    const c = await call(api.POST('/v1/pools/{name}/claim', { params: { path: { name: pool.name } }, body: user.trim() ? { user: user.trim() } : {} }));
    return { text: `Claimed ${c.vm}${c.user ? ` for ${c.user}` : ''}${c.ip ? ` at ${c.ip}` : ''}.` };
  });
  const release = (vm: string) => act(vm, async () => task(`Release of ${vm}`)(await call(api.POST('/v1/vms/{name}/release', vmPath(vm)))));
  const powerOff = (vm: string) => act(vm, async () => task(`Power-off of ${vm}`)(await call(api.POST('/v1/vms/{name}/power-off', vmPath(vm)))));
  const powerOn = (vm: string) => act(vm, async () => task(`Power-on of ${vm}`)(await call(api.POST('/v1/vms/{name}/power-on', vmPath(vm)))));
  const destroy = (vm: string) => act(vm, async () => {
    const d = await call(api.DELETE('/v1/vms/{name}', vmPath(vm)));
    return { text: `Destroyed ${d.name}.` };
  });
  const refresh = (c: PoolChild) => (isClaimed(c) ? release(c.name) : powerOff(c.name));

  return (
    <section aria-labelledby="children-heading">
      <h2 id="children-heading">Children</h2>
      <p class="inline-field">
        <label for="claim-user">Claim as</label>
        <input id="claim-user" type="text" value={user} maxLength={64} onInput={(e) => setUser(e.currentTarget.value)} />
      </p>
      <ErrorAlert error={action.error} />
      {outcome && ('accepted' in outcome ? <TaskNotice accepted={outcome.accepted} what={outcome.what} /> : <p role="status" class="notice">{outcome.text}</p>)}
      <DataTable
        label="Children"
        headers={['Name', 'Host', 'IP', 'State', 'Claimed by', 'Claimed since', 'Seconds to ready', 'Reboots', 'Forked at', 'Actions']}
        empty="No children."
      >
        {pool.vms.map((c: PoolChild) => {
          const claimed = isClaimed(c);
          const busy = busyVm === c.name;
          const running = c.state === 'running';
          return (
            <tr key={c.name} data-state={c.state} data-claimed={String(claimed)}>
              <th scope="row">{c.name}</th>
              <td>{c.host}</td>
              <td>{orDash(c.ip)}</td>
              <td>
                <span class={`state ${c.state}`}>{c.state}</span>
              </td>
              <td>{claimed ? orDash(c.claimedBy) : '—'}</td>
              <td>{time(c.claimedAt)}</td>
              <td>{seconds(c.secondsToReady)}</td>
              <td>{orDash(c.reboots)}</td>
              <td>{time(c.createdAt)}</td>
              <td class="actions">
                <button type="button" aria-label={`Claim ${c.name}`} disabled={busy || claimed} onClick={() => void claim(c.name)}>Claim</button>
                <button type="button" aria-label={`Release ${c.name}`} disabled={busy || !claimed} onClick={() => void release(c.name)}>Release</button>
                <button type="button" aria-label={`Power off ${c.name}`} disabled={busy || !running} onClick={() => void powerOff(c.name)}>Power off</button>
                <button type="button" aria-label={`Power on ${c.name}`} disabled={busy || running} onClick={() => void powerOn(c.name)}>Power on</button>
                <button type="button" aria-label={`Refresh ${c.name}`} disabled={busy || (!claimed && (pool.persistent || !running))} onClick={() => void refresh(c)}>Refresh</button>
                <button type="button" class="danger" aria-label={`Destroy ${c.name}`} disabled={busy} onClick={() => void destroy(c.name)}>Destroy</button>
                <Link href={`/vms/${encodeURIComponent(c.name)}/console`} aria-label={`Console ${c.name}`}>Console</Link>
                <Link href={`/vms/${encodeURIComponent(c.name)}/screen`} aria-label={`Screen ${c.name}`}>Screen</Link>
              </td>
            </tr>
          );
        })}
      </DataTable>
    </section>
  );
}
