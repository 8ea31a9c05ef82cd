import { lazy, Suspense } from 'react';
import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { BrowserRouter, Link, Navigate, Route, Routes, useNavigate } from 'react-router';
import { ApiError } from './api/client';
import { AuthProvider, RequireAuth, useAuth } from './auth/AuthContext';
import { Loading } from './components/common';

// Pages load on demand: the public form page does not pull in the canvas.
const WorkflowListPage = lazy(() => import('./pages/WorkflowListPage'));
const EditorPage = lazy(() => import('./pages/EditorPage'));
const RunPage = lazy(() => import('./pages/RunPage'));
const FormPage = lazy(() => import('./pages/FormPage'));
const ApprovalPage = lazy(() => import('./pages/ApprovalPage'));
const LoginPage = lazy(() => import('./pages/LoginPage'));

const queryClient = new QueryClient({
  defaultOptions: {
    queries: {
      // 4xx answers do not get better by asking again.
      retry: (count, error) => !(error instanceof ApiError && error.status >= 400 && error.status < 500) && count < 2,
      refetchOnWindowFocus: false,
      staleTime: 5_000,
    },
  },
});

function Header() {
  const { session, logout } = useAuth();
  const navigate = useNavigate();
  return (
    <header className="app-header">
      <Link to="/" className="brand">
        ConcertMaster
      </Link>
      <nav>
        <Link to="/">Workflows</Link>
      </nav>
      <div className="spacer" />
      {session ? (
        <div className="who">
          <span className="org" data-testid="header-org" title="Organisation">
            {session.org}
          </span>
          <span className="sub" data-testid="header-sub">
            {session.sub}
          </span>
          <span className={`role role-${session.role}`} data-testid="header-role">
            {session.role}
          </span>
          <button
            type="button"
            data-testid="btn-logout"
            onClick={() => {
              logout();
              navigate('/login');
            }}
          >
            Log out
          </button>
        </div>
      ) : (
        <Link to="/login">Log in</Link>
      )}
    </header>
  );
}

function Shell({ children, bare = false }: { children: React.ReactNode; bare?: boolean }) {
  return (
    <div className={bare ? 'app bare' : 'app'}>
      {bare ? null : <Header />}
      <main className="app-main">
        <Suspense fallback={<Loading />}>{children}</Suspense>
      </main>
    </div>
  );
}

function NotFound() {
  return (
    <div className="page">
      <h2>Not found</h2>
      <p>
        Nothing here. <Link to="/">Back to the workflows</Link>.
      </p>
    </div>
  );
}

export default function App() {
  return (
    <QueryClientProvider client={queryClient}>
      <AuthProvider>
        <BrowserRouter>
          <Routes>
            <Route path="/login" element={<Shell><LoginPage /></Shell>} />
            <Route path="/forms/:formId" element={<Shell bare><FormPage /></Shell>} />
            <Route path="/" element={<Shell><RequireAuth><WorkflowListPage /></RequireAuth></Shell>} />
            <Route path="/workflows" element={<Navigate to="/" replace />} />
            <Route path="/workflows/:id" element={<Shell><RequireAuth><EditorPage /></RequireAuth></Shell>} />
            <Route path="/runs/:id" element={<Shell><RequireAuth><RunPage /></RequireAuth></Shell>} />
            <Route path="/approvals/:id" element={<Shell><RequireAuth><ApprovalPage /></RequireAuth></Shell>} />
            <Route path="*" element={<Shell><NotFound /></Shell>} />
          </Routes>
        </BrowserRouter>
      </AuthProvider>
    </QueryClientProvider>
  );
}
