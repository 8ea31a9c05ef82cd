import { useMemo, useState } from 'react';
import { useNavigate, useSearchParams } from 'react-router';
import { useAuth } from '../auth/AuthContext';
import { CognitoError, type Challenge, type CognitoClient, type SignInStep, type TotpSetup } from '../auth/cognito';
import { decodeToken, type Session } from '../auth/token';

export default function LoginPage() {
  const { session, cognito } = useAuth();
  const [params] = useSearchParams();
  const navigate = useNavigate();
  const next = params.get('next');
  const done = () => navigate(next && next.startsWith('/') ? next : '/', { replace: true });

  return (
    <div className="page narrow">
      <h2>Log in</h2>
      {session ? (
        <p className="note">
          Logged in as <b>{session.sub}</b> ({session.role}) in <b>{session.org}</b>. Logging in again replaces it.
        </p>
      ) : null}
      {cognito ? (
        <>
          <CognitoSignIn client={cognito} onDone={done} />
          <details className="advanced" data-testid="login-token-option">
            <summary>Log in with an API token instead</summary>
            <TokenLogin onDone={done} />
          </details>
        </>
      ) : (
        <>
          <p>
            Paste an API token (a JWT). <code>concertmaster dev</code> prints an admin token when it starts;{' '}
            <code>concertmaster token --org dev --role editor --sub you</code> mints others.
          </p>
          <TokenLogin onDone={done} />
        </>
      )}
    </div>
  );
}

function TokenLogin({ onDone }: { onDone: (s: Session) => void }) {
  const { login } = useAuth();
  const [text, setText] = useState('');
  const [error, setError] = useState<string | null>(null);

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
      onDone(login(text));
    } catch (err) {
      setError((err as Error).message);
    }
  };

  return (
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
  );
}

type Stage = { kind: 'password' } | Challenge;

interface ShownError {
  type: string;
  message: string;
}

function shownError(e: unknown): ShownError {
  if (e instanceof CognitoError) return { type: e.type, message: e.message };
  return { type: 'Error', message: e instanceof Error ? e.message : String(e) };
}

const CODE_PATTERN = /^\d{6}$/;

/** E-mail and password, then whichever challenges the pool asks: new password, authenticator setup, code. */
function CognitoSignIn({ client, onDone }: { client: CognitoClient; onDone: (s: Session) => void }) {
  const { loginWithCognito } = useAuth();
  const [stage, setStage] = useState<Stage>({ kind: 'password' });
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [newPassword, setNewPassword] = useState('');
  const [confirm, setConfirm] = useState('');
  const [code, setCode] = useState('');
  const [setup, setSetup] = useState<TotpSetup | null>(null);
  const [error, setError] = useState<ShownError | null>(null);
  const [busy, setBusy] = useState(false);

  const restart = () => {
    setError(null);
    setStage({ kind: 'password' });
    setPassword('');
    setNewPassword('');
    setConfirm('');
    setCode('');
    setSetup(null);
  };

  const advance = async (step: SignInStep) => {
    setCode('');
    if (step.kind === 'signedIn') {
      try {
        onDone(loginWithCognito(step.tokens));
      } catch (e) {
        // Signed in at Cognito, but the account has no organisation or role the API accepts.
        restart();
        throw e;
      }
      return;
    }
    setStage(step);
    if (step.kind === 'mfaSetup') setSetup(await client.associateTotp(step, email.trim()));
  };

  const run = async (f: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    try {
      await f();
    } catch (e) {
      setError(shownError(e));
    } finally {
      setBusy(false);
    }
  };

  const submit = (e: React.FormEvent) => {
    e.preventDefault();
    if (busy) return;
    void run(async () => {
      switch (stage.kind) {
        case 'password':
          return advance(await client.signIn(email.trim(), password));
        case 'newPassword':
          if (newPassword !== confirm) throw new Error('the two new passwords differ');
          return advance(await client.setNewPassword(stage, newPassword));
        case 'mfaSetup':
          if (!setup) return advance(stage);
          return advance(await client.verifyTotp(stage, setup, code));
        case 'mfaCode':
          return advance(await client.answerMfa(stage, code));
      }
    });
  };

  const codeField = (
    <label>
      6-digit code from your authenticator app
      <input
        data-testid="cognito-code"
        inputMode="numeric"
        autoComplete="one-time-code"
        pattern="\d{6}"
        maxLength={6}
        required
        autoFocus
        value={code}
        onChange={(e) => setCode(e.target.value.replace(/\s/g, ''))}
      />
    </label>
  );

  let fields: React.ReactNode;
  let canSubmit: boolean;
  let action: string;
  switch (stage.kind) {
    case 'password':
      action = 'Sign in';
      canSubmit = email.trim() !== '' && password !== '';
      fields = (
        <>
          <label>
            E-mail
            <input data-testid="cognito-email" type="email" autoComplete="username" required autoFocus value={email} onChange={(e) => setEmail(e.target.value)} />
          </label>
          <label>
            Password
            <input data-testid="cognito-password" type="password" autoComplete="current-password" required value={password} onChange={(e) => setPassword(e.target.value)} />
          </label>
        </>
      );
      break;
    case 'newPassword':
      action = 'Set the password';
      canSubmit = newPassword !== '' && confirm !== '';
      fields = (
        <>
          <p data-testid="cognito-stage" data-stage="newPassword">
            Choose a new password for <b>{email}</b>.
          </p>
          <label>
            New password
            <input data-testid="cognito-new-password" type="password" autoComplete="new-password" required autoFocus value={newPassword} onChange={(e) => setNewPassword(e.target.value)} />
          </label>
          <label>
            New password, again
            <input data-testid="cognito-new-password-confirm" type="password" autoComplete="new-password" required value={confirm} onChange={(e) => setConfirm(e.target.value)} />
          </label>
        </>
      );
      break;
    case 'mfaSetup':
      action = setup ? 'Verify and sign in' : 'Get the secret again';
      canSubmit = setup ? CODE_PATTERN.test(code) : true;
      fields = (
        <>
          <p data-testid="cognito-stage" data-stage="mfaSetup">
            Sign-in needs an authenticator app (TOTP). Add this account to yours — paste the link, or type the secret — then enter the code it shows.
          </p>
          {setup ? (
            <>
              <label>
                Secret
                <input data-testid="cognito-totp-secret" readOnly value={setup.secretCode} onFocus={(e) => e.currentTarget.select()} />
              </label>
              <label>
                Link for the app
                <input data-testid="cognito-totp-uri" readOnly value={setup.otpauthUri} onFocus={(e) => e.currentTarget.select()} />
              </label>
              {codeField}
            </>
          ) : null}
        </>
      );
      break;
    case 'mfaCode':
      action = 'Sign in';
      canSubmit = CODE_PATTERN.test(code);
      fields = (
        <>
          <p data-testid="cognito-stage" data-stage="mfaCode">
            Enter the code your authenticator app shows for <b>{email}</b>.
          </p>
          {codeField}
        </>
      );
      break;
  }

  return (
    <form onSubmit={submit} className="login-form cognito-form" data-testid="cognito-form">
      {fields}
      {error ? (
        <div className="error-box" role="alert" data-testid="cognito-error" data-type={error.type}>
          {error.message}
        </div>
      ) : null}
      <div className="buttons">
        <button type="submit" className="primary" data-testid="cognito-submit" disabled={busy || !canSubmit}>
          {busy ? 'Please wait…' : action}
        </button>
        {stage.kind !== 'password' ? (
          <button type="button" data-testid="cognito-restart" disabled={busy} onClick={restart}>
            Start over
          </button>
        ) : null}
      </div>
    </form>
  );
}
