/** The shell: login gate, navigation, and the page for the current route. */
import { useEffect, useState } from 'react';
import { beginLogin, completeLogin, currentToken, loadUiConfig, logout, type UiConfig } from './auth/oidc.ts';
import { getMe, setOnUnauthenticated, type Me } from './api/client.ts';
import { linkProps, navigate, useRoute } from './router.ts';
import { SessionsPage } from './views/SessionsPage.tsx';
import { SessionPage } from './views/SessionPage.tsx';
import { ActivityPage } from './views/ActivityPage.tsx';
import { ApprovalsPage } from './views/ApprovalsPage.tsx';
import { AlertPage, AlertsPage } from './views/AlertsPage.tsx';

export function App() {
  const route = useRoute();
  const [config, setConfig] = useState<UiConfig | null>(null);
  const [token, setToken] = useState(currentToken());
  const [me, setMe] = useState<Me | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    loadUiConfig().then(setConfig, (e: Error) => setError(e.message));
    setOnUnauthenticated(() => setToken(null));
  }, []);

  useEffect(() => {
    if (!config || route.name !== 'callback') return;
    completeLogin(config, route.search).then(
      (to) => {
        setToken(currentToken());
        navigate(to, true);
      },
      (e: Error) => {
        setError(e.message);
        navigate('/ui/', true);
      },
    );
  }, [config, route]);

  useEffect(() => {
    if (token) getMe().then(setMe, () => setMe(null));
  }, [token]);

  if (error && !token) return <LoginScreen config={config} error={error} />;
  if (route.name === 'callback') return <main className="center">Signing in…</main>;
  if (!token) return <LoginScreen config={config} error={error} />;

  const canRead = me ? me.roles.some((r) => ['analyst', 'auditor', 'admin'].includes(r)) : true;
  const canSeeApprovals = me ? me.roles.some((r) => ['approver', 'auditor', 'admin'].includes(r)) : false;
  return (
    <div className="shell">
      <header className="top">
        <a className="brand" {...linkProps('/ui/')}>Vigil</a>
        <nav>
          <a className={route.name === 'sessions' || route.name === 'session' ? 'active' : ''} {...linkProps('/ui/')}>Sessions</a>
          {canRead && <a className={route.name === 'alerts' || route.name === 'alert' ? 'active' : ''} {...linkProps('/ui/alerts')}>Alerts</a>}
          <a className={route.name === 'activity' ? 'active' : ''} {...linkProps('/ui/activity')}>Activity</a>
          {canSeeApprovals && <a className={route.name === 'approvals' ? 'active' : ''} {...linkProps('/ui/approvals')}>Approvals</a>}
        </nav>
        <span className="who" data-testid="who">
          {me ? `${me.sub} · ${me.roles.join(', ') || 'no role'}` : '…'}
          <button
            className="link"
            onClick={() => {
              logout();
              setToken(null);
            }}
          >
            Sign out
          </button>
        </span>
      </header>
      <main>
        {route.name === 'approvals' ? (
          canSeeApprovals ? <ApprovalsPage me={me} /> : <p className="error">Your roles do not allow viewing approvals.</p>
        ) : !canRead ? (
          <p className="error">Your roles ({me?.roles.join(', ') || 'none'}) do not allow viewing sessions.</p>
        ) : route.name === 'sessions' ? (
          <SessionsPage search={route.search} />
        ) : route.name === 'session' ? (
          <SessionPage id={route.id} search={route.search} />
        ) : route.name === 'alerts' ? (
          <AlertsPage search={route.search} />
        ) : route.name === 'alert' ? (
          <AlertPage id={route.id} />
        ) : route.name === 'activity' ? (
          <ActivityPage />
        ) : (
          <p>No such page. <a {...linkProps('/ui/')}>Sessions</a></p>
        )}
      </main>
    </div>
  );
}

function LoginScreen({ config, error }: { config: UiConfig | null; error: string | null }) {
  const [busy, setBusy] = useState(false);
  const [failure, setFailure] = useState<string | null>(null);
  return (
    <main className="center login">
      <h1>Vigil</h1>
      <p>Session recording and replay. Sign in to search and replay sessions.</p>
      {(error || failure) && <p className="error" role="alert">{failure ?? error}</p>}
      <button
        disabled={!config || busy}
        onClick={() => {
          setBusy(true);
          const back = location.pathname.startsWith('/ui/') && !location.pathname.startsWith('/ui/callback') ? location.pathname + location.search : '/ui/';
          beginLogin(config!, back).catch((e: Error) => {
            setFailure(e.message);
            setBusy(false);
          });
        }}
      >
        Sign in
      </button>
      {config && <p className="hint">Identity provider: {config.issuer}</p>}
    </main>
  );
}
