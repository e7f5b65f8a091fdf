/** Log in with a station account (session cookie). */
import { useState } from 'preact/hooks';
import { api, ApiError, type User } from '../api.js';

export function LoginPage({ onLogin }: { onLogin: (u: User) => void }) {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      onLogin(await api.login(username, password));
    } catch (err) {
      const a = err as ApiError;
      setError(a.status === 401 ? 'Wrong user name or password.' : `${a.code}: ${a.message}`);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="login" onSubmit={submit}>
      <h1>Inspector QA</h1>
      <label>User <input name="username" autoFocus autoComplete="username" value={username} onInput={(e) => setUsername(e.currentTarget.value)} /></label>
      <label>Password <input name="password" type="password" autoComplete="current-password" value={password} onInput={(e) => setPassword(e.currentTarget.value)} /></label>
      <button type="submit" disabled={busy || !username || !password}>{busy ? 'Logging in…' : 'Log in'}</button>
      {error ? <p class="error" role="alert">{error}</p> : null}
    </form>
  );
}
