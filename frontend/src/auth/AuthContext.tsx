import { createContext, useCallback, useContext, useEffect, useMemo, useRef, useState, type ReactNode } from 'react';
import { Navigate, useLocation } from 'react-router';
import { configureAuth } from '../api/client';
import { canDelete, canEdit, decodeToken, loadSession, saveSession, type Session } from './token';

interface AuthValue {
  session: Session | null;
  /** Decodes and stores a token; throws with a readable message when it is not usable. */
  login: (token: string) => Session;
  logout: () => void;
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

export function AuthProvider({ children }: { children: ReactNode }) {
  const [session, setSession] = useState<Session | null>(() => {
    const st = storage();
    return st ? loadSession(st) : null;
  });
  const ref = useRef(session);
  ref.current = session;

  const logout = useCallback(() => {
    const st = storage();
    if (st) saveSession(st, null);
    setSession(null);
  }, []);

  const login = useCallback((token: string) => {
    const s = decodeToken(token);
    const st = storage();
    if (st) saveSession(st, s);
    setSession(s);
    return s;
  }, []);

  useEffect(() => {
    configureAuth(() => ref.current?.token ?? null, logout);
  }, [logout]);
  // Also before the first effect runs (queries start during the first render pass).
  configureAuth(() => ref.current?.token ?? null, logout);

  const value = useMemo<AuthValue>(
    () => ({ session, login, logout, canEdit: canEdit(session), canDelete: canDelete(session) }),
    [session, login, logout],
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
