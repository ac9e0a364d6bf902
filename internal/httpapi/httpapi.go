// Package httpapi serves the Pusher HTTP API under /apps/{app_id}/, the API
// every official Pusher server SDK speaks: trigger and batch-trigger events,
// query channels and presence users, terminate a user's connections.
//
// Every request is authenticated before it is parsed, and before its body
// is read: the app is found by the id in the path, a declared body over the
// app's limit is refused, and the signature over method, path and query is
// checked. Only then is the body read, and checked against the body_md5 the
// signature covers. A request refused before its body is read is answered
// at once and its connection closed, so an unsigned client costs Herald
// neither the body nor the time to wait for it. A request that fails any
// check changes nothing.
package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/heraldhq/herald/internal/apps"
	"github.com/heraldhq/herald/internal/auth"
	"github.com/heraldhq/herald/internal/hub"
)

// Config configures the API.
type Config struct {
	Apps *apps.Registry
	Hub  *hub.Hub
	Log  *slog.Logger
	// Now is the clock requests' auth_timestamp is checked against; nil
	// means time.Now.
	Now func() time.Time
	// Authenticated, if not nil, is called with each request whose
	// signature has been verified, before its body is read. The server
	// uses it to stop counting the connection as unauthenticated. It must
	// be cheap: it runs on the publish path.
	Authenticated func(*http.Request)
	// Observe, if not nil, is called once per request as its handler
	// returns, with the id of the app the request was for, the endpoint,
	// the HTTP status written and the time the handler took. The app id is
	// "" when the path names no app Herald serves: that id is the client's
	// choice, not a value to record. The endpoint is one of a closed set:
	// events, batch_events, channels, channel, users, terminate, or other
	// for a path under /apps/ that is none of them. It must be cheap: it
	// runs on the publish path.
	Observe func(appID, endpoint string, status int, d time.Duration)
}

// API is the REST API handler.
type API struct {
	cfg Config
	mux *http.ServeMux
}

// New returns the API handler.
func New(cfg Config) *API {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	a := &API{cfg: cfg, mux: http.NewServeMux()}
	a.mux.Handle("POST /apps/{app_id}/events", a.signed("events", a.trigger))
	a.mux.Handle("POST /apps/{app_id}/batch_events", a.signed("batch_events", a.batchTrigger))
	a.mux.Handle("GET /apps/{app_id}/channels", a.signed("channels", a.channels))
	a.mux.Handle("GET /apps/{app_id}/channels/{channel_name}", a.signed("channel", a.channel))
	a.mux.Handle("GET /apps/{app_id}/channels/{channel_name}/users", a.signed("users", a.users))
	a.mux.Handle("POST /apps/{app_id}/users/{user_id}/terminate_connections", a.signed("terminate", a.terminate))
	a.mux.Handle("/apps/", a.observed("other", func(w http.ResponseWriter, r *http.Request) string {
		refuseUnread(w, r, http.StatusNotFound, "Not found: no such endpoint %s %s", r.Method, r.URL.Path)
		return ""
	}))
	return a
}

func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

// request is an authenticated API request.
type request struct {
	*http.Request
	app  *apps.App
	body []byte
}

// errResponse is a refusal: the HTTP status and the text the SDK surfaces.
type errResponse struct {
	status int
	msg    string
	// cause, for a 503, is the broker's error, logged but not shown.
	cause error
}

func (e *errResponse) Error() string { return e.msg }

func refuse(status int, format string, args ...any) error {
	return &errResponse{status: status, msg: fmt.Sprintf(format, args...)}
}

// unavailable is the answer to a request whose broker call failed: 503,
// for nothing was accepted and the backend may retry (an SDK sees a 5xx
// as retryable), never a 200 for an event that nobody will receive.
func unavailable(what string, err error) error {
	return &errResponse{
		status: http.StatusServiceUnavailable,
		msg:    fmt.Sprintf("Service unavailable: the broker is unreachable, %s failed; retry later", what),
		cause:  err,
	}
}

// retryAfter is what a 503 asks the backend to wait, in seconds.
const retryAfter = "1"

// handlerFunc answers an authenticated request with a JSON-encodable value
// or an error (an *errResponse, or anything else for a 500).
type handlerFunc func(r *request) (any, error)

// signed authenticates a request for endpoint and runs h on it: unknown
// app 404, body over the app's limit 413, bad signature or stale timestamp
// 401, disabled app 403. The first three are known before the body is
// read, and refused without reading it.
func (a *API) signed(endpoint string, h handlerFunc) http.Handler {
	return a.observed(endpoint, func(w http.ResponseWriter, r *http.Request) (appID string) {
		app := a.cfg.Apps.ByID(r.PathValue("app_id"))
		if app == nil {
			refuseUnread(w, r, http.StatusNotFound, "Unknown app id %q", truncate(r.PathValue("app_id"), 64))
			return
		}
		appID = app.ID
		if r.ContentLength > int64(app.MaxBodyBytes) {
			refuseUnread(w, r, http.StatusRequestEntityTooLarge, "Request body is larger than %d bytes", app.MaxBodyBytes)
			return
		}
		q := r.URL.Query()
		if err := a.verify(app, r, q); err != nil {
			a.cfg.Log.Debug("rest request refused", "app_id", app.ID, "method", r.Method, "path", r.URL.Path, "reason", err)
			refuseUnread(w, r, http.StatusUnauthorized, "%s", capitalize(err.Error()))
			return
		}
		if a.cfg.Authenticated != nil {
			a.cfg.Authenticated(r)
		}
		body, err := readBody(w, r, app.MaxBodyBytes)
		if err != nil {
			var tooBig *http.MaxBytesError
			switch {
			case errors.As(err, &tooBig):
				writeError(w, http.StatusRequestEntityTooLarge, "Request body is larger than %d bytes", app.MaxBodyBytes)
			case errors.Is(err, os.ErrDeadlineExceeded):
				// The server's body deadline passed: what is left of the
				// body may still come, so the connection cannot be reused.
				w.Header().Set("Connection", "close")
				writeError(w, http.StatusRequestTimeout, "Request body did not arrive in time")
			default:
				writeError(w, http.StatusBadRequest, "Could not read the request body: %v", err)
			}
			return
		}
		if err := auth.VerifyBodyMD5(q, body); err != nil {
			a.cfg.Log.Debug("rest request refused", "app_id", app.ID, "method", r.Method, "path", r.URL.Path, "reason", err)
			writeError(w, http.StatusUnauthorized, "%s", capitalize(err.Error()))
			return
		}
		if !app.IsEnabled() {
			writeError(w, http.StatusForbidden, "App %s is disabled", app.ID)
			return
		}
		res, err := h(&request{Request: r, app: app, body: body})
		if err != nil {
			var e *errResponse
			if errors.As(err, &e) && e.cause != nil {
				a.cfg.Log.Warn("rest request failed: broker unavailable", "app_id", app.ID, "method", r.Method, "path", r.URL.Path, "err", e.cause)
				w.Header().Set("Retry-After", retryAfter)
				writeError(w, e.status, "%s", e.msg)
				return
			}
			if errors.As(err, &e) {
				a.cfg.Log.Debug("rest request refused", "app_id", app.ID, "method", r.Method, "path", r.URL.Path, "status", e.status, "reason", e.msg)
				writeError(w, e.status, "%s", e.msg)
				return
			}
			a.cfg.Log.Error("rest request failed", "app_id", app.ID, "method", r.Method, "path", r.URL.Path, "err", err)
			writeError(w, http.StatusInternalServerError, "Internal error, try again")
			return
		}
		writeJSON(w, http.StatusOK, res)
		return
	})
}

// observed runs serve, which answers a request and returns the id of the
// app Herald found for it ("" for none), and reports the request to
// Config.Observe. Without an Observe it adds nothing to the request's cost.
func (a *API) observed(endpoint string, serve func(http.ResponseWriter, *http.Request) string) http.Handler {
	if a.cfg.Observe == nil {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { serve(w, r) })
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		appID := serve(sw, r)
		a.cfg.Observe(appID, endpoint, sw.code(), time.Since(start))
	})
}

// statusWriter remembers the status a handler answered with.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 && status >= 200 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// code is the status net/http sent: 200 when the handler wrote nothing.
func (w *statusWriter) code() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

// verify checks everything the request signature covers: the auth
// parameters and the signature over method, path and query, body_md5
// included, but not the body. SDKs sign the path as they built it, before
// percent-encoding; when the client sent an escaped path (a channel name
// with '#', say) the escaped form is accepted too.
func (a *API) verify(app *apps.App, r *http.Request, q url.Values) error {
	now := a.cfg.Now()
	err := auth.VerifyRequestQuery(app.Key, app.Secret, r.Method, r.URL.Path, q, now)
	if err != nil && errors.Is(err, auth.ErrBadSignature) && r.URL.RawPath != "" {
		if auth.VerifyRequestQuery(app.Key, app.Secret, r.Method, r.URL.RawPath, q, now) == nil {
			return nil
		}
	}
	return err
}

func readBody(w http.ResponseWriter, r *http.Request, limit int) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	// A body over the limit makes MaxBytesReader tell net/http's own
	// writer to close the connection after the answer; a wrapper would
	// hide it from that.
	if sw, ok := w.(*statusWriter); ok {
		w = sw.ResponseWriter
	}
	return io.ReadAll(http.MaxBytesReader(w, r.Body, int64(limit)))
}

// unreadGrace is how long net/http may go on reading a refused request's
// body, which it does after the answer has gone out, before the connection
// closes: a client that sent its body along with the head then finds the
// answer rather than a reset. It is net/http's own wait before closing a
// connection whose body it gave up on.
const unreadGrace = 500 * time.Millisecond

// refuseUnread answers a request whose body has not been read, and will not
// be: the answer leaves at once, and the connection closes after it, since
// whatever is left of the body would otherwise be taken for the next
// request.
func refuseUnread(w http.ResponseWriter, r *http.Request, status int, format string, args ...any) {
	w.Header().Set("Connection", "close")
	if r.ContentLength != 0 {
		// Errors only for a ResponseWriter that is not a connection's.
		http.NewResponseController(w).SetReadDeadline(time.Now().Add(unreadGrace))
	}
	writeError(w, status, format, args...)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep '&' in signing hints readable
	if err := enc.Encode(v); err != nil {
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"error":"could not encode the response"}` + "\n")
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// capitalize starts an error message with a capital letter, as API error
// texts do; Go error strings start in lower case. A leading parameter name
// such as body_md5 is left as it is.
func capitalize(s string) string {
	word, _, _ := strings.Cut(s, " ")
	if s == "" || s[0] < 'a' || s[0] > 'z' || strings.Contains(word, "_") {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}

// writeError answers {"error": "..."}: the SDKs surface the body as the
// error's text, so it says exactly what was wrong.
func writeError(w http.ResponseWriter, status int, format string, args ...any) {
	writeJSON(w, status, struct {
		Error string `json:"error"`
	}{fmt.Sprintf(format, args...)})
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
