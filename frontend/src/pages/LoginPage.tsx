import { useMemo, useState } from 'react';
import { useNavigate, useSearchParams } from 'react-router';
import { useAuth } from '../auth/AuthContext';
import { decodeToken } from '../auth/token';

export default function LoginPage() {
  const { login, session } = useAuth();
  const [text, setText] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [params] = useSearchParams();
  const navigate = useNavigate();
  const next = params.get('next');

  const preview = useMemo(() => {
    if (!text.trim()) return null;
    try {
      return decodeToken(text);
    } catch {
      return null;
    }
  }, [text]);

  const submit = (e: React.FormEvent) => {
    e.preventDefault();
    try {
      login(text);
      navigate(next && next.startsWith('/') ? next : '/', { replace: true });
    } catch (err) {
      setError((err as Error).message);
    }
  };

  return (
    <div className="page narrow">
      <h2>Log in</h2>
      <p>
        Paste an API token (a JWT). <code>concertmaster dev</code> prints an admin token when it starts;{' '}
        <code>concertmaster token --org dev --role editor --sub you</code> mints others.
      </p>
      {session ? (
        <p className="note">
          Logged in as <b>{session.sub}</b> ({session.role}) in <b>{session.org}</b>. A new token replaces it.
        </p>
      ) : null}
      <form onSubmit={submit} className="login-form">
        <textarea
          data-testid="login-token"
          placeholder="eyJhbGciOi…"
          rows={5}
          spellCheck={false}
          value={text}
          onChange={(e) => {
            setText(e.target.value);
            setError(null);
          }}
        />
        {preview ? (
          <div className="token-preview" data-testid="login-preview">
            organisation <b>{preview.org}</b> · subject <b>{preview.sub}</b> · role <b>{preview.role}</b>
            {preview.exp ? <> · expires {new Date(preview.exp * 1000).toLocaleString()}</> : null}
          </div>
        ) : null}
        {error ? (
          <div className="error-box" role="alert" data-testid="login-error">
            {error}
          </div>
        ) : null}
        <button type="submit" className="primary" data-testid="login-submit" disabled={!text.trim()}>
          Log in
        </button>
      </form>
    </div>
  );
}
