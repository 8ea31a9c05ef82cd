import { createContext, useCallback, useContext, useEffect, useMemo, useState, useSyncExternalStore, type ReactNode } from 'react';
import { Navigate, useLocation } from 'react-router';
import { configureAuth } from '../api/client';
import { cognitoSettings } from '../config';
import { CognitoClient, type CognitoTokens } from './cognito';
import { SessionManager } from './session';
import { canDelete, canEdit, type Session } from './token';

interface AuthValue {
  session: Session | null;
  /** Decodes and stores a token; throws with a readable message when it is not usable. */
  login: (token: string) => Session;
  /** Stores the tokens of a completed Cognito sign-in; throws like `login`. */
  loginWithCognito: (tokens: CognitoTokens) => Session;
  logout: () => void;
  /** The user pool to sign in with (null: only a pasted token, the embedded server's way). */
  cognito: CognitoClient | null;
  canEdit: boolean;
  canDelete: boolean;
}

const AuthContext = createContext<AuthValue | null>(null);

function storage(): Storage | null {
  try {
    return window.localStorage;
  } catch {
    return null;
  }
}

function newManager(): SessionManager {
  const settings = cognitoSettings();
  return new SessionManager({ storage: storage(), cognito: settings ? new CognitoClient(settings) : null });
}

export function AuthProvider({ children }: { children: ReactNode }) {
  const [manager] = useState(newManager);
  const session = useSyncExternalStore(manager.subscribe, manager.get);

  // Registered during render too: queries start in the first render pass, before effects.
  configureAuth(() => manager.get()?.token ?? null, manager.signOut, manager.renew);
  useEffect(() => {
    manager.start();
    return () => manager.stop();
  }, [manager]);

  const login = useCallback((token: string) => manager.signInWithToken(token), [manager]);
  const loginWithCognito = useCallback((tokens: CognitoTokens) => manager.signInWithCognito(tokens), [manager]);

  const value = useMemo<AuthValue>(
    () => ({
      session,
      login,
      loginWithCognito,
      logout: manager.signOut,
      cognito: manager.cognito,
      canEdit: canEdit(session),
      canDelete: canDelete(session),
    }),
    [session, login, loginWithCognito, manager],
  );
  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}

export function useAuth(): AuthValue {
  const v = useContext(AuthContext);
  if (!v) throw new Error('useAuth outside AuthProvider');
  return v;
}

/** Sends visitors without a token to the login page, and back here after. */
export function RequireAuth({ children }: { children: ReactNode }) {
  const { session } = useAuth();
  const loc = useLocation();
  if (!session) {
    const next = encodeURIComponent(loc.pathname + loc.search);
    return <Navigate to={`/login?next=${next}`} replace />;
  }
  return <>{children}</>;
}
