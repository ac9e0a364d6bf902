// Package appauth is the backend half of Herald's authorization: what an
// app's server runs so that its users may subscribe to private, presence and
// encrypted channels, sign in, and get Centrifugo tokens.
//
// Herald trusts the app's backend to decide who may listen. pusher-js asks
// an endpoint of the app (/pusher/auth, /pusher/user-auth; Laravel Echo's
// /broadcasting/auth) for a signed token, and Centrifugo clients ask for
// JWTs. The app writes one decision function; this package parses every
// request format the clients send, checks where requests come from, signs
// exactly as the Pusher server SDKs do, and answers in the format each
// client expects.
//
// # Handlers
//
// An Authorizer built by New serves two http.Handlers, usable with net/http
// and therefore with chi, gin (gin.WrapH) or echo (echo.WrapHandler):
//
//   - ChannelHandler: channel authorization. A single channel as a form or
//     JSON POST, the pusher-js-auth batch form, Centrifuge's JSON batch
//     {"client","channels"} (answered with subscription JWTs), and JSONP.
//   - UserHandler: user authentication (pusher-js's signin).
//
// Denials are 403 Forbidden. A request the handler cannot read (no or
// several socket_id, a socket id that is not digits.digits, an invalid
// channel name, a bad JSONP callback) is 400 with the reason in the body.
//
// # JSONP, CORS and where requests come from
//
// pusher-js's JSONP transport loads the endpoint as a <script>. Any page can
// load a script from anywhere, with the user's cookies, and read what it
// does: a page on another site could open its own socket, ask the app's
// endpoint (as the logged-in victim) for its socket and the victim's private
// channel, and receive a valid signature. So a JSONP request is answered
// only when the browser says it is same-origin (Sec-Fetch-Site), or when
// its Origin, or for script loads that send none the origin of its Referer,
// is in Options.AllowedOrigins; a cross-site request that names neither is
// refused. The callback must be exactly Pusher.auth_callbacks['N'], and the
// answer is application/javascript with X-Content-Type-Options: nosniff.
//
// POST answers cannot be read by another site's page unless CORS allows
// it. The handlers answer CORS (preflight included, with credentials) for
// the allowed origins only, so a page on another allowed origin can use the
// ordinary POST transport instead of JSONP.
//
// # CSRF
//
// The handlers have no side effects of their own, but a decision function
// may (it may log, count, or create the presence membership it signs), and
// it reads the session cookie. They compose with the app's CSRF
// middleware; or set Options.CSRFToken, and every POST must carry the
// header Options.CSRFHeader (X-CSRF-Token by default, which Laravel Echo
// sends as X-CSRF-TOKEN) with the expected value. pusher-js sends it with
// channelAuthorization: {headers: {"X-CSRF-Token": token}}.
//
// # Tokens
//
// Signer signs Pusher channel authorizations and user authentications
// without HTTP (for tests, tools and other transports). TokenSigner mints
// Centrifugo connection and subscription JWTs (HS, RS or ES) with the claim
// names Herald verifies.
//
// See docs/backend.md in the Herald repository for the endpoints, their
// formats and the herald token and herald auth-server commands.
package appauth
