//! The auth service's HTTP routes (docs/API.md "Auth").

use std::sync::Arc;

use api::auth::{
    ChangePasswordRequest, EmailChangeRequest, EmailChangeToken, EmailChanged, EndSessionsRequest, EndSessionsResponse,
    ForgotPasswordRequest, IntrospectRequest, Introspection, Jwks, LoginMfaRequest, LoginRequest, LoginResponse,
    PasswordCheck, RefreshRequest, RegisterRequest, RegisterResponse, ResetPasswordRequest, SessionInfo, SessionStatus,
    StepUpCheck, StepUpRequest, TokenResponse, TotpDisableRequest, TotpEnableRequest, TotpEnabled, TotpSetup,
    VerifyEmailRequest,
};
use api::personal::{DataSubject, ErasureReport, PersonalDataApi};
use api::projects::Page;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use platform::http::{Authenticated, ClientIp, Json, JsonWithStatus, OptionalJson, Problem};
use platform::identity::{TokenVerifier, VerifyError};
use serde::Serialize;
use uuid::Uuid;

use crate::service::{AuthError, AuthService, ClientInfo};
use crate::{browser, device};

type Svc = State<Arc<AuthService>>;

pub fn router(svc: Arc<AuthService>) -> Router {
    routes().with_state(svc)
}

/// The public routes before their state: what `router` serves, listable without a service (the
/// role-gate table test walks it).
pub fn routes() -> Router<Arc<AuthService>> {
    Router::new()
        .route("/auth/register", post(register))
        .route("/auth/login", post(login))
        .route("/auth/login/mfa", post(login_mfa))
        .route("/auth/mfa/totp/setup", post(totp_setup))
        .route("/auth/mfa/totp/enable", post(totp_enable))
        .route("/auth/mfa/totp/disable", post(totp_disable))
        .route("/auth/mfa/recovery-codes", post(regenerate_recovery_codes))
        .route("/auth/users/{id}/mfa/reset", post(admin_reset_mfa))
        .route("/auth/email/change/confirm", post(confirm_email_change))
        .route("/auth/email/change/undo", post(undo_email_change))
        .route("/auth/refresh", post(refresh))
        .route("/auth/verify", post(introspect))
        .route("/auth/logout", post(logout))
        .route("/auth/logout-all", post(logout_all))
        .route("/auth/password/change", post(change_password))
        .route("/auth/password/forgot", post(forgot_password))
        .route("/auth/password/reset", post(reset_password))
        .route("/auth/email/verify", post(verify_email))
        .route("/auth/email/verify/resend", post(resend_verification))
        .route("/auth/sessions", get(sessions))
        .route("/auth/sessions/{id}", delete(revoke_session))
        .route("/.well-known/jwks.json", get(jwks))
}

/// Routes for other services; mount behind `platform::http::require_service` (callers: `api::internal`).
pub fn internal_router(svc: Arc<AuthService>) -> Router {
    internal_routes().with_state(svc)
}

/// The internal routes before their state.
pub fn internal_routes() -> Router<Arc<AuthService>> {
    Router::new()
        .route("/internal/sessions/{id}", get(internal_session_status))
        .route("/internal/sessions/end-all", post(internal_end_sessions))
        .route("/internal/auth/password-check", post(internal_password_check))
        .route("/internal/auth/email-changed", post(internal_email_changed))
        .route("/internal/auth/step-up", post(internal_step_up))
        .route("/internal/auth/email-change", post(internal_email_change))
        .route("/internal/auth/personal-data/export", post(internal_export))
        .route("/internal/auth/personal-data/erase", post(internal_erase))
}

/// Token and secret answers are never cached (RFC 6749 §5.1).
fn no_store<T: Serialize>(body: T) -> Response {
    let mut res = Json(body).into_response();
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

impl From<AuthError> for Problem {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::InvalidCredentials => Problem::new(StatusCode::UNAUTHORIZED, "invalid credentials"),
            AuthError::Busy => Problem::unavailable(2),
            AuthError::Throttled(secs) => Problem::too_many(secs),
            AuthError::Conflict(detail) => Problem::conflict(detail),
            AuthError::BadToken => Problem::bad_request("invalid or expired token"),
            AuthError::Api(api::ApiError::Conflict(_)) => Problem::conflict("email already registered"),
            AuthError::Api(e) => e.into(),
        }
    }
}

/// The same answer for a new and a taken address (the owner of a taken one is mailed instead).
#[utoipa::path(post, path = "/auth/register", tag = "auth", request_body = RegisterRequest,
    responses((status = 201, body = RegisterResponse, description = "created; the same answer when the address is taken"),
              (status = 422, description = "invalid fields or weak password"),
              (status = 429, description = "the client's registration budget is spent; see Retry-After")))]
pub async fn register(
    State(svc): Svc,
    ClientIp(ip): ClientIp,
    Json(req): Json<RegisterRequest>,
) -> Result<JsonWithStatus<RegisterResponse>, Problem> {
    let user = svc.register(req, ip).await?;
    Ok(JsonWithStatus(StatusCode::CREATED, RegisterResponse { user }))
}

#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse, description = "tokens, or `{mfa_required, mfa_token}` when 2FA is on"),
              (status = 401, description = "invalid credentials"),
              (status = 429, description = "too many failed attempts; see Retry-After")))]
pub async fn login(
    State(svc): Svc,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Json(req): Json<LoginRequest>,
) -> Result<Response, Problem> {
    let device = device::from_headers(&headers);
    match svc.login_from_device(req, client_info(ip, &headers), device.as_deref()).await? {
        LoginResponse::Tokens(tokens) => Ok(signed_in(&svc, &headers, tokens)),
        challenge => Ok(no_store(challenge)),
    }
}

/// The answer to a completed sign-in: the tokens, and a new device cookie for the account
/// (docs/SECURITY.md LG-2).
fn signed_in(svc: &AuthService, headers: &HeaderMap, tokens: TokenResponse) -> Response {
    let cookie = device::set_cookie(&svc.device_cookie(&tokens.user.email));
    let mut res = token_answer(svc, headers, tokens);
    if let Some(cookie) = cookie {
        res.headers_mut().append(header::SET_COOKIE, cookie);
    }
    res
}

/// The token pair as the client asked for it: both in the body, or (browser clients, SE-6) the
/// refresh token only in the `__Host-` cookie.
fn token_answer(svc: &AuthService, headers: &HeaderMap, mut tokens: TokenResponse) -> Response {
    if !browser::wants_cookie(headers) {
        return no_store(tokens);
    }
    let cookies = browser::session_cookies(&tokens.refresh_token, svc.session_lifetime());
    tokens.refresh_token.clear();
    let mut res = no_store(tokens);
    for cookie in cookies {
        res.headers_mut().append(header::SET_COOKIE, cookie);
    }
    res
}

fn client_info(ip: Option<std::net::IpAddr>, headers: &HeaderMap) -> ClientInfo {
    ClientInfo { user_agent: headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_string), ip }
}

/// The second step of a login with 2FA: the `mfa_token` and a TOTP or recovery code.
#[utoipa::path(post, path = "/auth/login/mfa", tag = "auth", request_body = LoginMfaRequest,
    responses((status = 200, body = TokenResponse),
              (status = 401, description = "unknown, expired or spent mfa_token, or a wrong code"),
              (status = 429, description = "too many wrong codes; see Retry-After")))]
pub async fn login_mfa(
    State(svc): Svc,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Json(req): Json<LoginMfaRequest>,
) -> Result<Response, Problem> {
    let tokens = svc.login_mfa(&req.mfa_token, &req.code, client_info(ip, &headers)).await?;
    Ok(signed_in(&svc, &headers, tokens))
}

#[utoipa::path(post, path = "/auth/mfa/totp/setup", tag = "auth", request_body = StepUpRequest,
    responses((status = 200, body = TotpSetup, description = "a new seed, not active until enabled"),
              (status = 401, description = "`step_up_failed`: wrong current password or code"),
              (status = 403, description = "`step_up_required`: no current_password (or current_code)"),
              (status = 409, description = "2FA is already enabled"),
              (status = 429, description = "too many failed proofs; see Retry-After")))]
pub async fn totp_setup(
    State(svc): Svc,
    Authenticated(caller): Authenticated,
    ClientIp(ip): ClientIp,
    OptionalJson(req): OptionalJson<StepUpRequest>,
) -> Result<Response, Problem> {
    let proof = req.and_then(|r| r.proof());
    Ok(no_store(svc.totp_setup(&caller, proof.as_ref(), ip).await?))
}

/// Ten new recovery codes (the old ones stop working), after a step-up proof.
#[utoipa::path(post, path = "/auth/mfa/recovery-codes", tag = "auth", request_body = StepUpRequest,
    responses((status = 200, body = TotpEnabled, description = "the new codes, shown only now"),
              (status = 401, description = "`step_up_failed`"), (status = 403, description = "`step_up_required`"),
              (status = 409, description = "2FA is not enabled"), (status = 429, description = "too many failed proofs")))]
pub async fn regenerate_recovery_codes(
    State(svc): Svc,
    Authenticated(caller): Authenticated,
    ClientIp(ip): ClientIp,
    OptionalJson(req): OptionalJson<StepUpRequest>,
) -> Result<Response, Problem> {
    let proof = req.and_then(|r| r.proof());
    Ok(no_store(svc.regenerate_recovery_codes(&caller, proof.as_ref(), ip).await?))
}

/// An administrator removes a user's second factor (with the administrator's own step-up proof);
/// every session of the user ends, the user is mailed, the audit log records it.
#[utoipa::path(post, path = "/auth/users/{id}/mfa/reset", tag = "auth", request_body = StepUpRequest,
    params(("id" = Uuid, Path)),
    responses((status = 204, description = "the user's second factor is removed"),
              (status = 401, description = "`step_up_failed`"), (status = 403, description = "not an admin, or `step_up_required`"),
              (status = 404, description = "no such user"), (status = 409, description = "the user has no second factor")))]
pub async fn admin_reset_mfa(
    State(svc): Svc,
    Authenticated(caller): Authenticated,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
    OptionalJson(req): OptionalJson<StepUpRequest>,
) -> Result<StatusCode, Problem> {
    let id = Uuid::parse_str(&id).map_err(|_| Problem::not_found())?;
    let proof = req.and_then(|r| r.proof());
    svc.admin_reset_mfa(&caller, id, proof.as_ref(), ip).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The link mailed to the new address of an email change: applies it.
#[utoipa::path(post, path = "/auth/email/change/confirm", tag = "auth", request_body = EmailChangeToken,
    responses((status = 204, description = "the email changed (verified); the old address got an undo link"),
              (status = 400, description = "unknown, used or expired token"),
              (status = 409, description = "the address was taken meanwhile; nothing changed")))]
pub async fn confirm_email_change(State(svc): Svc, Json(req): Json<EmailChangeToken>) -> Result<StatusCode, Problem> {
    svc.confirm_email_change(&req.token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The link mailed to the old address after a change: restores it and ends every session.
#[utoipa::path(post, path = "/auth/email/change/undo", tag = "auth", request_body = EmailChangeToken,
    responses((status = 204, description = "the old address is back; every session of the account ended"),
              (status = 400, description = "unknown, used or expired token"),
              (status = 409, description = "the old address was taken meanwhile; nothing changed")))]
pub async fn undo_email_change(State(svc): Svc, Json(req): Json<EmailChangeToken>) -> Result<StatusCode, Problem> {
    svc.undo_email_change(&req.token).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/auth/mfa/totp/enable", tag = "auth", request_body = TotpEnableRequest,
    responses((status = 200, body = TotpEnabled, description = "2FA is on; the recovery codes are shown once"),
              (status = 409, description = "no setup started, or 2FA already enabled"),
              (status = 422, description = "not the current code"),
              (status = 429, description = "too many wrong codes")))]
pub async fn totp_enable(
    State(svc): Svc,
    Authenticated(caller): Authenticated,
    ClientIp(ip): ClientIp,
    Json(req): Json<TotpEnableRequest>,
) -> Result<Response, Problem> {
    Ok(no_store(svc.totp_enable(&caller, &req.code, ip).await?))
}

#[utoipa::path(post, path = "/auth/mfa/totp/disable", tag = "auth", request_body = TotpDisableRequest,
    responses((status = 204, description = "2FA is off and the recovery codes are gone"),
              (status = 401, description = "`step_up_failed`: wrong password"),
              (status = 403, description = "`step_up_required`: no password given"),
              (status = 409, description = "2FA is not enabled"), (status = 429, description = "too many failed proofs")))]
pub async fn totp_disable(
    State(svc): Svc,
    Authenticated(caller): Authenticated,
    ClientIp(ip): ClientIp,
    OptionalJson(req): OptionalJson<TotpDisableRequest>,
) -> Result<StatusCode, Problem> {
    let proof = req.and_then(|r| r.proof());
    svc.totp_disable(&caller, proof.as_ref(), ip).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// With a body, the refresh token comes from it. Without one, from the browser's `__Host-` cookie,
/// and then the request must pass the CSRF checks of `browser::check_same_origin` (403).
#[utoipa::path(post, path = "/auth/refresh", tag = "auth", request_body(content = Option<RefreshRequest>,
        description = "the refresh token; browsers send no body and `X-Trellis-Session: cookie` instead"),
    responses((status = 200, body = TokenResponse),
              (status = 401, description = "unknown, expired or revoked refresh token; reuse of a rotated one also ends its session"),
              (status = 403, description = "cookie refresh that is not a same-origin request of the web app")))]
pub async fn refresh(
    State(svc): Svc,
    headers: HeaderMap,
    OptionalJson(req): OptionalJson<RefreshRequest>,
) -> Result<Response, Problem> {
    let presented = match req {
        Some(req) => req.refresh_token,
        None => {
            browser::check_same_origin(&headers)?;
            match browser::refresh_from_cookie(&headers) {
                Some(token) => token,
                None => return Ok(refused(&headers, AuthError::InvalidCredentials)),
            }
        }
    };
    match svc.refresh(&presented).await {
        Ok(tokens) => Ok(token_answer(&svc, &headers, tokens)),
        Err(e) => Ok(refused(&headers, e)),
    }
}

/// A refused refresh; a browser's 401 also deletes its (dead) session cookies.
fn refused(headers: &HeaderMap, e: AuthError) -> Response {
    let mut res = Problem::from(e).into_response();
    if browser::wants_cookie(headers) && res.status() == StatusCode::UNAUTHORIZED {
        for cookie in browser::cleared_cookies() {
            res.headers_mut().append(header::SET_COOKIE, cookie);
        }
    }
    res
}

/// Token introspection (RFC 7662 shape): the same checks every service applies, session included.
#[utoipa::path(post, path = "/auth/verify", tag = "auth", request_body = IntrospectRequest,
    responses((status = 200, body = Introspection, description = "`{active: false}` for a bad, expired or revoked token")))]
pub async fn introspect(
    axum::Extension(verifier): axum::Extension<Arc<TokenVerifier>>,
    Json(req): Json<IntrospectRequest>,
) -> Result<Response, Problem> {
    let answer = match verifier.verify(&req.token).await {
        Ok(id) => Introspection {
            active: true,
            sub: Some(id.user_id),
            role: Some(id.role),
            sid: Some(id.session_id),
            exp: Some(id.expires_at),
            iat: Some(id.issued_at),
        },
        Err(VerifyError::Invalid) => {
            Introspection { active: false, sub: None, role: None, sid: None, exp: None, iat: None }
        }
        Err(VerifyError::Unavailable) => return Err(Problem::unavailable(5)),
    };
    let mut res = Json(answer).into_response();
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

async fn internal_end_sessions(
    State(svc): Svc,
    Json(req): Json<EndSessionsRequest>,
) -> Result<Json<EndSessionsResponse>, Problem> {
    Ok(Json(EndSessionsResponse { ended: svc.end_all_sessions(req.user_id, req.reason).await? }))
}

/// 204 when the password is the user's; 401 otherwise, 429 once failed attempts are throttled.
/// The password travels in the body only and is never logged.
async fn internal_password_check(State(svc): Svc, Json(req): Json<PasswordCheck>) -> Result<StatusCode, Problem> {
    svc.check_password(req.user_id, &req.password).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// 204 when the proof holds; 403 `step_up_required`, 401 `step_up_failed`, 429 otherwise. The
/// proof travels in the body only and is never logged.
async fn internal_step_up(State(svc): Svc, Json(req): Json<StepUpCheck>) -> Result<StatusCode, Problem> {
    svc.verify_step_up(req.user_id, req.proof.as_ref(), req.client_ip).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn internal_email_change(State(svc): Svc, Json(req): Json<EmailChangeRequest>) -> Result<StatusCode, Problem> {
    svc.request_email_change(&req).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn internal_email_changed(State(svc): Svc, Json(req): Json<EmailChanged>) -> Result<StatusCode, Problem> {
    svc.email_changed(req.user_id, &req.old_email).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The subject travels in the body, so no email sits in a URL; the answer holds personal data and
/// is never cached.
async fn internal_export(State(svc): Svc, Json(subject): Json<DataSubject>) -> Result<Response, Problem> {
    Ok(no_store(PersonalDataApi::export(&*svc, &subject).await?))
}

async fn internal_erase(State(svc): Svc, Json(subject): Json<DataSubject>) -> Result<Json<ErasureReport>, Problem> {
    Ok(Json(PersonalDataApi::erase(&*svc, &subject).await?))
}

#[utoipa::path(post, path = "/auth/logout", tag = "auth",
    responses((status = 204, description = "the session's refresh and access tokens stop working at once")))]
pub async fn logout(State(svc): Svc, Authenticated(caller): Authenticated) -> Result<Response, Problem> {
    svc.logout(&caller).await?;
    Ok(ended())
}

/// 204 that also deletes a browser's session cookies (harmless for other clients).
fn ended() -> Response {
    let mut res = StatusCode::NO_CONTENT.into_response();
    for cookie in browser::cleared_cookies() {
        res.headers_mut().append(header::SET_COOKIE, cookie);
    }
    res
}

#[utoipa::path(post, path = "/auth/logout-all", tag = "auth",
    responses((status = 204, description = "every session of the caller ends")))]
pub async fn logout_all(State(svc): Svc, Authenticated(caller): Authenticated) -> Result<Response, Problem> {
    svc.logout_all(&caller).await?;
    Ok(ended())
}

#[utoipa::path(post, path = "/auth/password/change", tag = "auth", request_body = ChangePasswordRequest,
    responses((status = 204, description = "changed; the caller's other sessions ended"),
              (status = 422, description = "wrong current password, or a new password the policy refuses"),
              (status = 429, description = "too many failed password checks for the account or the client; see Retry-After")))]
pub async fn change_password(
    State(svc): Svc,
    ClientIp(ip): ClientIp,
    Authenticated(caller): Authenticated,
    Json(req): Json<ChangePasswordRequest>,
) -> Result<StatusCode, Problem> {
    svc.change_password(&caller, &req.current_password, &req.new_password, ip).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Mails a reset link if an active account has this email; the answer is the same either way.
#[utoipa::path(post, path = "/auth/password/forgot", tag = "auth", request_body = ForgotPasswordRequest,
    responses((status = 202, description = "accepted, whether or not an account has this email (no body)")))]
pub async fn forgot_password(State(svc): Svc, Json(req): Json<ForgotPasswordRequest>) -> Result<StatusCode, Problem> {
    svc.forgot_password(&req.email).await?;
    Ok(StatusCode::ACCEPTED)
}

#[utoipa::path(post, path = "/auth/password/reset", tag = "auth", request_body = ResetPasswordRequest,
    responses((status = 204, description = "password set; every session of the account ended; no token is issued"),
              (status = 400, description = "unknown, used or expired token"),
              (status = 422, description = "a new password the policy refuses")))]
pub async fn reset_password(State(svc): Svc, Json(req): Json<ResetPasswordRequest>) -> Result<StatusCode, Problem> {
    svc.reset_password(&req.token, &req.new_password).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/auth/email/verify", tag = "auth", request_body = VerifyEmailRequest,
    responses((status = 204, description = "the email is verified"),
              (status = 400, description = "unknown, used or expired token")))]
pub async fn verify_email(State(svc): Svc, Json(req): Json<VerifyEmailRequest>) -> Result<StatusCode, Problem> {
    svc.verify_email(&req.token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Mails the caller a new verification link (nothing when already verified or when the hourly
/// limit is reached).
#[utoipa::path(post, path = "/auth/email/verify/resend", tag = "auth",
    responses((status = 202, description = "accepted (no body)"), (status = 401, description = "not signed in")))]
pub async fn resend_verification(State(svc): Svc, Authenticated(caller): Authenticated) -> Result<StatusCode, Problem> {
    svc.resend_verification(&caller).await?;
    Ok(StatusCode::ACCEPTED)
}

#[utoipa::path(get, path = "/auth/sessions", tag = "auth", responses((status = 200, body = Page<SessionInfo>)))]
pub async fn sessions(
    State(svc): Svc,
    Authenticated(caller): Authenticated,
) -> Result<Json<Page<SessionInfo>>, Problem> {
    Ok(Json(Page { items: svc.sessions(&caller).await?, next_cursor: None }))
}

#[utoipa::path(delete, path = "/auth/sessions/{id}", tag = "auth", params(("id" = Uuid, Path)),
    responses((status = 204, description = "the session ended"), (status = 404, description = "no such session of the caller")))]
pub async fn revoke_session(
    State(svc): Svc,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    let id = Uuid::parse_str(&id).map_err(|_| Problem::not_found())?;
    svc.revoke_session(&caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, serde::Deserialize)]
pub struct SessionActive {
    pub active: bool,
}

async fn internal_session_status(State(svc): Svc, Path(id): Path<String>) -> Result<Json<SessionActive>, Problem> {
    let id = Uuid::parse_str(&id).map_err(|_| Problem::not_found())?;
    Ok(Json(SessionActive { active: svc.session_active(id).await? }))
}

/// The public keys that verify access tokens: the current key, a rotated-in key about to sign,
/// and previous keys until the tokens they signed have expired. Each names its one `alg`.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "auth", responses((status = 200, body = Jwks)))]
pub async fn jwks(State(svc): Svc) -> Response {
    let mut res = Json(svc.public_keys()).into_response();
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=60"));
    res
}
