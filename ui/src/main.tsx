/**
 * The QA UI's shell: who is logged in, the top bar (pages, line status, save
 * state), the `?` cheat-sheet, and the page for the current hash route.
 */
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import 'uplot/dist/uPlot.min.css';
import './styles.css';
import { api, ApiError, type User } from './api.js';
import { labelSaver } from './label-saver.js';
import { navigate, useRoute } from './router.js';
import { useKeys } from './components/keys.js';
import { CheatSheet } from './components/CheatSheet.js';
import { SaveIndicator } from './components/SaveIndicator.js';
import { LoginPage } from './pages/Login.js';
import { LivePage } from './pages/Live.js';
import { ReviewPage } from './pages/Review.js';
import { LabelNext, LabelPage } from './pages/Label.js';
import { StatsPage } from './pages/Stats.js';
import { ModelsPage } from './pages/Models.js';
import { CalibrationPage } from './pages/Calibration.js';

const PAGES: Array<{ id: string; title: string; key: string }> = [
  { id: 'live', title: 'Live', key: 'shift+L' },
  { id: 'review', title: 'Review', key: 'shift+R' },
  { id: 'label', title: 'Label', key: 'shift+A' },
  { id: 'stats', title: 'Stats', key: 'shift+S' },
  { id: 'models', title: 'Models', key: 'shift+M' },
  { id: 'calibration', title: 'Calibration', key: 'shift+C' },
];

function App() {
  const route = useRoute();
  const [user, setUser] = useState<User | null | undefined>(undefined);
  const [classes, setClasses] = useState<string[]>([]);
  const [bootError, setBootError] = useState<string | null>(null);

  useEffect(() => {
    api.me().then((u) => setUser(u ?? null), (e: ApiError) => {
      if (e.status === 401 || e.status === 403) setUser(null);
      else setBootError(`${e.code}: ${e.message}`);
    });
  }, []);
  useEffect(() => {
    if (!user) return;
    labelSaver.resume();
    api.classes().then(setClasses, () => setClasses([]));
  }, [user]);

  useKeys('Pages', PAGES.map((p) => ({ keys: [p.key], help: `go to ${p.title}`, run: () => navigate(`/${p.id}`), when: () => !!user })));

  if (bootError) return <div class="boot-error">The station did not answer: {bootError}</div>;
  if (user === undefined) return <div class="loading">Loading…</div>;
  if (user === null) return <LoginPage onLogin={setUser} />;

  const page = route.page;
  const logout = (): void => { void api.logout().finally(() => setUser(null)); };
  return (
    <div class="app">
      <header class="topbar">
        <span class="brand">Inspector QA</span>
        <nav>
          {PAGES.map((p) => (
            <a key={p.id} href={`#/${p.id}`} class={page === p.id ? 'active' : ''} data-testid={`nav-${p.id}`}>{p.title}</a>
          ))}
        </nav>
        <span class="spacer" />
        <SaveIndicator />
        <span class="user" title={`role: ${user.role}`}>{user.name} <span class="muted">({user.role})</span></span>
        <button class="link" onClick={logout}>log out</button>
        <span class="muted hint"><kbd>?</kbd> shortcuts</span>
      </header>
      <main class="content">
        {route.page === 'live' || route.page === '' ? <LivePage /> : null}
        {route.page === 'review' ? <ReviewPage route={route} classes={classes} user={user} /> : null}
        {route.page === 'label' && route.params.length >= 2 ? <LabelPage route={route} classes={classes} user={user} /> : null}
        {route.page === 'label' && route.params.length < 2 ? <LabelNext route={route} /> : null}
        {route.page === 'stats' ? <StatsPage /> : null}
        {route.page === 'models' ? <ModelsPage user={user} /> : null}
        {route.page === 'calibration' ? <CalibrationPage user={user} /> : null}
        {!['live', '', 'review', 'label', 'stats', 'models', 'calibration'].includes(route.page) ? <p>No page “{route.page}”. <a href="#/live">Live</a></p> : null}
      </main>
      <CheatSheet />
    </div>
  );
}

render(<App />, document.getElementById('app')!);
