// Signing in to a Cognito user pool over its JSON API (the same requests the AWS SDK sends),
// with fetch: no SDK in the bundle. The app client has no secret, so no SECRET_HASH; the
// password goes to Cognito only. The pool requires TOTP MFA: a user's first sign-in sets a new
// password (admin-created users) and registers an authenticator app.

import type { CognitoSettings } from '../config';

export interface CognitoTokens {
  idToken: string;
  /** Absent when renewing (Cognito keeps the one it issued at sign-in). */
  refreshToken?: string;
  /** Seconds. */
  expiresIn?: number;
}

/** Where a sign-in stands: signed in, or the challenge to answer next. */
export type SignInStep =
  | { kind: 'signedIn'; tokens: CognitoTokens }
  | { kind: 'newPassword'; username: string; session: string }
  | { kind: 'mfaSetup'; username: string; session: string }
  | { kind: 'mfaCode'; username: string; session: string };

export type Challenge = Exclude<SignInStep, { kind: 'signedIn' }>;

/** An authenticator app to register: the secret, and the same as an otpauth:// URI. */
export interface TotpSetup {
  secretCode: string;
  otpauthUri: string;
  /** The session to verify the first code with. */
  session: string;
}

/** An error answer of Cognito: `type` without its namespace (`NotAuthorizedException`). */
export class CognitoError extends Error {
  readonly type: string;
  constructor(type: string, message: string) {
    super(message);
    this.name = 'CognitoError';
    this.type = type;
  }
}

interface AuthResult {
  AuthenticationResult?: { IdToken?: string; RefreshToken?: string; ExpiresIn?: number };
  ChallengeName?: string;
  Session?: string;
  ChallengeParameters?: Record<string, string>;
}

export const TOTP_ISSUER = 'ConcertMaster';

/** The Key URI authenticator apps import (`@` may stay as it is in a URI path). */
export function otpauthUri(account: string, secret: string, issuer: string = TOTP_ISSUER): string {
  const label = `${encodeURIComponent(issuer)}:${encodeURIComponent(account).replace(/%40/g, '@')}`;
  return `otpauth://totp/${label}?secret=${encodeURIComponent(secret)}&issuer=${encodeURIComponent(issuer)}`;
}

export class CognitoClient {
  readonly settings: CognitoSettings;
  private readonly fetchImpl: typeof fetch;

  // Wrapped: a bare `fetch` stored on an object and called as a method is an illegal invocation.
  constructor(settings: CognitoSettings, fetchImpl: typeof fetch = (input, init) => fetch(input, init)) {
    this.settings = settings;
    this.fetchImpl = fetchImpl;
  }

  /** One operation of `AWSCognitoIdentityProviderService`; error answers become CognitoErrors. */
  async call<T>(operation: string, body: Record<string, unknown>): Promise<T> {
    let res: Response;
    try {
      res = await this.fetchImpl(this.settings.endpoint, {
        method: 'POST',
        headers: {
          'Content-Type': 'application/x-amz-json-1.1',
          'X-Amz-Target': `AWSCognitoIdentityProviderService.${operation}`,
        },
        body: JSON.stringify(body),
      });
    } catch (e) {
      throw new CognitoError('NetworkError', `Cognito cannot be reached (${(e as Error).message})`);
    }
    const text = await res.text();
    let json: Record<string, unknown> = {};
    try {
      json = text ? (JSON.parse(text) as Record<string, unknown>) : {};
    } catch {
      // Not JSON: a proxy's error page.
    }
    if (!res.ok) {
      const rawType = typeof json.__type === 'string' ? json.__type : typeof json.code === 'string' ? json.code : `HTTP${res.status}`;
      const type = rawType.slice(rawType.lastIndexOf('#') + 1);
      const message = [json.message, json.Message].find((m): m is string => typeof m === 'string' && m !== '');
      throw new CognitoError(type, message ?? `${operation} failed (${type})`);
    }
    return json as T;
  }

  private next(r: AuthResult, username: string): SignInStep {
    const tokens = r.AuthenticationResult;
    if (tokens?.IdToken) {
      return { kind: 'signedIn', tokens: { idToken: tokens.IdToken, refreshToken: tokens.RefreshToken, expiresIn: tokens.ExpiresIn } };
    }
    if (!r.ChallengeName || !r.Session) throw new CognitoError('UnexpectedAnswer', 'Cognito answered with neither tokens nor a challenge');
    // With e-mail sign-in the pool's username is not what was typed; challenge answers name the real one.
    const user = r.ChallengeParameters?.USER_ID_FOR_SRP || r.ChallengeParameters?.USERNAME || username;
    switch (r.ChallengeName) {
      case 'NEW_PASSWORD_REQUIRED':
        return { kind: 'newPassword', username: user, session: r.Session };
      case 'MFA_SETUP':
        return { kind: 'mfaSetup', username: user, session: r.Session };
      case 'SOFTWARE_TOKEN_MFA':
        return { kind: 'mfaCode', username: user, session: r.Session };
      default:
        throw new CognitoError('UnsupportedChallenge', `the sign-in needs ${r.ChallengeName}, which the builder does not support`);
    }
  }

  private respond(challengeName: string, session: string, username: string, responses: Record<string, string>): Promise<SignInStep> {
    return this.call<AuthResult>('RespondToAuthChallenge', {
      ClientId: this.settings.clientId,
      ChallengeName: challengeName,
      Session: session,
      ChallengeResponses: { USERNAME: username, ...responses },
    }).then((r) => this.next(r, username));
  }

  async signIn(username: string, password: string): Promise<SignInStep> {
    const r = await this.call<AuthResult>('InitiateAuth', {
      AuthFlow: 'USER_PASSWORD_AUTH',
      ClientId: this.settings.clientId,
      AuthParameters: { USERNAME: username, PASSWORD: password },
    });
    return this.next(r, username);
  }

  setNewPassword(step: Challenge, newPassword: string): Promise<SignInStep> {
    return this.respond('NEW_PASSWORD_REQUIRED', step.session, step.username, { NEW_PASSWORD: newPassword });
  }

  /** Starts registering an authenticator app; `account` labels it there (the e-mail address). */
  async associateTotp(step: Challenge, account: string): Promise<TotpSetup> {
    const r = await this.call<{ SecretCode?: string; Session?: string }>('AssociateSoftwareToken', { Session: step.session });
    if (!r.SecretCode || !r.Session) throw new CognitoError('UnexpectedAnswer', 'Cognito returned no authenticator secret');
    return { secretCode: r.SecretCode, otpauthUri: otpauthUri(account, r.SecretCode), session: r.Session };
  }

  /** Verifies the app's first code, then finishes the MFA_SETUP challenge. */
  async verifyTotp(step: Challenge, setup: TotpSetup, code: string, deviceName = 'ConcertMaster'): Promise<SignInStep> {
    const r = await this.call<{ Status?: string; Session?: string }>('VerifySoftwareToken', {
      Session: setup.session,
      UserCode: code.trim(),
      FriendlyDeviceName: deviceName,
    });
    if (r.Status !== 'SUCCESS') throw new CognitoError('CodeMismatchException', 'the code was not accepted: check the app and try the next code');
    return this.respond('MFA_SETUP', r.Session ?? setup.session, step.username, {});
  }

  answerMfa(step: Challenge, code: string): Promise<SignInStep> {
    return this.respond('SOFTWARE_TOKEN_MFA', step.session, step.username, { SOFTWARE_TOKEN_MFA_CODE: code.trim() });
  }

  /** A fresh ID token for a refresh token. */
  async refresh(refreshToken: string): Promise<CognitoTokens> {
    const r = await this.call<AuthResult>('InitiateAuth', {
      AuthFlow: 'REFRESH_TOKEN_AUTH',
      ClientId: this.settings.clientId,
      AuthParameters: { REFRESH_TOKEN: refreshToken },
    });
    const t = r.AuthenticationResult;
    if (!t?.IdToken) throw new CognitoError('UnexpectedAnswer', 'Cognito returned no ID token');
    return { idToken: t.IdToken, refreshToken: t.RefreshToken, expiresIn: t.ExpiresIn };
  }

  /** Revokes a refresh token (and the tokens issued with it). */
  async revoke(refreshToken: string): Promise<void> {
    await this.call('RevokeToken', { ClientId: this.settings.clientId, Token: refreshToken });
  }
}
