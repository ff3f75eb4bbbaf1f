import type { JSX } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { type ApiError, asApiError, logOut, restoreSession } from './api';
import { ErrorAlert, Header } from './components';
import { HostsPage } from './pages/hosts';
import { ImagesPage } from './pages/images';
import { LoginPage } from './pages/login';
import { NotFoundPage } from './pages/not-found';
import { PoolPage } from './pages/pool';
import { PoolNewPage } from './pages/pool-new';
import { PoolsPage } from './pages/pools';
import { ReplicasPage } from './pages/replicas';
import { TaskPage } from './pages/task';
import { TasksPage } from './pages/tasks';
import { TemplatesPage } from './pages/templates';
import { lazyPage, matchPath, navigate, usePath } from './router';

const VmConsolePage = lazyPage(() => import('./pages/vm-console').then((m) => m.VmConsolePage));
const VmScreenPage = lazyPage(() => import('./pages/vm-screen').then((m) => m.VmScreenPage));

/** The console's routes: the server answers each of these paths with this page (with a session cookie). */
const ROUTES: [string, (p: Record<string, string>) => JSX.Element][] = [
  ['/pools', () => <PoolsPage />],
  ['/pools/new', () => <PoolNewPage />],
  ['/pools/:name', (p) => <PoolPage key={p.name} name={p.name ?? ''} />],
  ['/tasks', () => <TasksPage />],
  ['/tasks/:id', (p) => <TaskPage key={p.id} id={p.id ?? ''} />],
  ['/replicas', () => <ReplicasPage />],
  ['/hosts', () => <HostsPage />],
  ['/images', () => <ImagesPage />],
  ['/templates', () => <TemplatesPage />],
  ['/vms/:name/console', (p) => <VmConsolePage key={p.name} name={p.name ?? ''} />],
  ['/vms/:name/screen', (p) => <VmScreenPage key={p.name} name={p.name ?? ''} />],
];

function route(path: string): JSX.Element {
  for (const [pattern, render] of ROUTES) {
    const params = matchPath(pattern, path);
    if (params) return render(params);
  }
  return <NotFoundPage path={path} />;
}

type Auth = 'checking' | 'in' | 'out';

/**
 * A console page opened without a session answers 401 and sends the browser on to /login: the page it came from
 * (its referrer, same origin only) is where the login leads back to, once.
 */
let returnTo: string | null = ((): string | null => {
  if (location.pathname !== '/login' || !document.referrer) return null;
  try {
    const from = new URL(document.referrer);
    return from.origin === location.origin && from.pathname !== '/login' ? from.pathname + from.search : null;
  } catch {
    return null;
  }
})();

/**
 * The console: the log-in page, or the pages behind the session. A page the server served came with the session
 * cookie, so its CSRF token is asked back once (GET /v1/session); without a live session the page goes to /login.
 */
export function App(): JSX.Element {
  const path = usePath();
  const [auth, setAuth] = useState<Auth>('checking');
  const [error, setError] = useState<ApiError | null>(null);
  const [leaving, setLeaving] = useState(false);

  useEffect(() => {
    if (path === '/') navigate('/pools', { replace: true });
  }, [path]);

  useEffect(() => {
    if (path === '/login') return;
    // logged out, then back to a console page (history): ask the server again
    if (auth === 'out') return void setAuth('checking');
    if (auth !== 'checking') return;
    restoreSession().then(
      () => setAuth('in'),
      (err: unknown) => {
        const e = asApiError(err);
        if (e.status === 401) {
          setAuth('out');
          navigate('/login', { replace: true });
        } else setError(e);
      },
    );
  }, [auth, path]);

  const onLogOut = (): void => {
    setLeaving(true);
    logOut()
      .catch((err: unknown) => setError(asApiError(err)))
      .finally(() => {
        setLeaving(false);
        setAuth('out');
        navigate('/login');
      });
  };

  if (path === '/login') {
    return (
      <main id="main" class="login-main">
        <LoginPage
          onLoggedIn={() => {
            setAuth('in');
            setError(null);
            navigate(returnTo ?? '/pools');
            returnTo = null;
          }}
        />
        <ErrorAlert error={error} />
      </main>
    );
  }
  return (
    <>
      <Header path={path} onLogOut={onLogOut} busy={leaving} />
      <main id="main">
        <ErrorAlert error={error} />
        {auth === 'in' ? route(path) : auth === 'checking' && !error ? <p>Loading…</p> : null}
      </main>
    </>
  );
}
