import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import App from './App';
import { loadConfig, setConfig } from './config';
import './styles.css';

// The configuration decides where every request goes and how to sign in, so nothing renders
// before it is known.
void loadConfig().then((config) => {
  setConfig(config);
  createRoot(document.getElementById('root')!).render(
    <StrictMode>
      <App />
    </StrictMode>,
  );
});
