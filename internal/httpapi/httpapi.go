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
	"os"
	"strings"
	"sync"
	"time"

	"github.com/heraldhq/herald/internal/apps"
	"github.com/heraldhq/herald/internal/auth"
	"github.com/heraldhq/herald/internal/hub"
	"github.com/heraldhq/herald/internal/lograte"
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
	// events and batchEvents are the publish endpoints, which ServePublish
	// reaches without the mux.
	events, batchEvents endpoint
	// verifiers holds each app's *auth.RequestVerifier, by *apps.App.
	verifiers sync.Map
	// unavailable bounds the warnings of requests the broker could not
	// serve: during an outage every publish fails the same way.
	unavailable lograte.Limiter
}

// New returns the API handler.
func New(cfg Config) *API {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	a := &API{cfg: cfg, mux: http.NewServeMux(), unavailable: lograte.Limiter{Every: time.Second, Burst: 5}}
	a.events = a.signed("events", a.trigger)
	a.batchEvents = a.signed("batch_events", a.batchTrigger)
	a.mux.Handle("POST /apps/{app_id}/events", a.events)
	a.mux.Handle("POST /apps/{app_id}/batch_events", a.batchEvents)
	a.mux.Handle("GET /apps/{app_id}/channels", a.signed("channels", a.channels))
	a.mux.Handle("GET /apps/{app_id}/channels/{channel_name}", a.signed("channel", a.channel))
	a.mux.Handle("GET /apps/{app_id}/channels/{channel_name}/users", a.signed("users", a.users))
	a.mux.Handle("POST /apps/{app_id}/users/{user_id}/terminate_connections", a.signed("terminate", a.terminate))
	a.mux.Handle("/apps/", a.observed("other", func(w http.ResponseWriter, r *http.Request, _ string) string {
		refuseUnread(w, r, http.StatusNotFound, "Not found: no such endpoint %s %s", r.Method, r.URL.Path)
		return ""
	}))
	return a
}

func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !a.ServePublish(w, r) {
		a.mux.ServeHTTP(w, r)
	}
}

// ServePublish serves r if it is a publish, POST /apps/{app_id}/events or
// /batch_events, and reports whether it was: the requests a backend sends
// most are answered without a route table's matching. It takes only a
// path that a ServeMux would route as it stands, unescaped and clean; for
// any other the answer is false, and the request is for ServeHTTP.
func (a *API) ServePublish(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodPost || r.URL.RawPath != "" {
		return false
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/apps/")
	if !ok {
		return false
	}
	id, endpoint, ok := strings.Cut(rest, "/")
	if !ok || id == "" || id == "." || id == ".." {
		return false
	}
	switch endpoint {
	case "events":
		a.events.serve(w, r, id)
	case "batch_events":
		a.batchEvents.serve(w, r, id)
	default:
		return false
	}
	return true
}

// endpoint is an API endpoint's handler; a ServeMux gives it the app id
// from the path's {app_id}, ServePublish from its own reading of the path.
type endpoint struct {
	serve func(w http.ResponseWriter, r *http.Request, appID string)
}

func (e endpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.serve(w, r, r.PathValue("app_id"))
}

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
type handlerFunc func(r request) (any, error)

// signed authenticates a request for endpoint and runs h on it: unknown
// app 404, body over the app's limit 413, bad signature or stale timestamp
// 401, disabled app 403. The first three are known before the body is
// read, and refused without reading it.
func (a *API) signed(name string, h handlerFunc) endpoint {
	return a.observed(name, func(w http.ResponseWriter, r *http.Request, pathID string) (appID string) {
		app := a.cfg.Apps.ByID(pathID)
		if app == nil {
			refuseUnread(w, r, http.StatusNotFound, "Unknown app id %q", truncate(pathID, 64))
			return
		}
		appID = app.ID
		if r.ContentLength > int64(app.MaxBodyBytes) {
			refuseUnread(w, r, http.StatusRequestEntityTooLarge, "Request body is larger than %d bytes", app.MaxBodyBytes)
			return
		}
		signed, err := a.verify(app, r)
		if err != nil {
			a.cfg.Log.Debug("rest request refused", "app_id", app.ID, "method", r.Method, "path", r.URL.Path, "reason", err)
			refuseUnread(w, r, http.StatusUnauthorized, "%s", capitalize(err.Error()))
			return
		}
		if a.cfg.Authenticated != nil {
			a.cfg.Authenticated(r)
		}
		body, buf, err := readBody(w, r, app.MaxBodyBytes)
		if buf != nil {
			// Nothing the handler keeps refers to the body: the JSON
			// decoders copy what they take out of it.
			defer putBodyBuf(buf)
		}
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
		if err := signed.VerifyBody(body); err != nil {
			a.cfg.Log.Debug("rest request refused", "app_id", app.ID, "method", r.Method, "path", r.URL.Path, "reason", err)
			writeError(w, http.StatusUnauthorized, "%s", capitalize(err.Error()))
			return
		}
		if !app.IsEnabled() {
			writeError(w, http.StatusForbidden, "App %s is disabled", app.ID)
			return
		}
		res, err := h(request{Request: r, app: app, body: body})
		if err != nil {
			var e *errResponse
			if errors.As(err, &e) && e.cause != nil {
				if ok, suppressed := a.unavailable.Allow(); ok {
					a.cfg.Log.Warn("rest request failed: broker unavailable", "app_id", app.ID, "method", r.Method, "path", r.URL.Path, "err", e.cause, "suppressed", suppressed)
				}
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
func (a *API) observed(name string, serve func(http.ResponseWriter, *http.Request, string) string) endpoint {
	if a.cfg.Observe == nil {
		return endpoint{serve: func(w http.ResponseWriter, r *http.Request, pathID string) { serve(w, r, pathID) }}
	}
	return endpoint{serve: func(w http.ResponseWriter, r *http.Request, pathID string) {
		start := time.Now()
		sw := statusWriters.Get().(*statusWriter)
		*sw = statusWriter{ResponseWriter: w}
		appID := serve(sw, r, pathID)
		code := sw.code()
		// Nothing holds on to sw once serve has returned.
		*sw = statusWriter{}
		statusWriters.Put(sw)
		a.cfg.Observe(appID, name, code, time.Since(start))
	}}
}

var statusWriters = sync.Pool{New: func() any { return new(statusWriter) }}

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
func (a *API) verify(app *apps.App, r *http.Request) (auth.Signed, error) {
	return a.verifier(app).VerifyQuery(r.Method, r.URL.Path, r.URL.RawPath, r.URL.RawQuery, a.cfg.Now())
}

// verifier is app's request verifier, made on its first request.
func (a *API) verifier(app *apps.App) *auth.RequestVerifier {
	if v, ok := a.verifiers.Load(app); ok {
		if v := v.(*auth.RequestVerifier); v.Key() == app.Key && v.Secret() == app.Secret {
			return v
		}
	}
	v := auth.NewRequestVerifier(app.Key, app.Secret)
	a.verifiers.Store(app, v)
	return v
}

// maxPooledBody is the largest body read into a pooled buffer; a larger
// one, rare on the publish path, gets a buffer of its own.
const maxPooledBody = 64 << 10

var bodyBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

func putBodyBuf(b *[]byte) { bodyBufs.Put(b) }

// readBody reads the request body, at most limit bytes. A body of a
// declared length within the limit is read into a pooled buffer, returned
// as buf for the caller to give back once done with the body: net/http's
// own body reader ends at the declared length, so it cannot run over.
func readBody(w http.ResponseWriter, r *http.Request, limit int) (body []byte, buf *[]byte, err error) {
	if r.Body == nil {
		return nil, nil, nil
	}
	if n := r.ContentLength; n >= 0 && n <= int64(limit) && n <= maxPooledBody {
		buf = bodyBufs.Get().(*[]byte)
		if cap(*buf) < int(n) {
			*buf = make([]byte, n)
		}
		body = (*buf)[:n]
		if _, err := io.ReadFull(r.Body, body); err != nil {
			return nil, buf, err
		}
		return body, buf, nil
	}
	// A body over the limit makes MaxBytesReader tell net/http's own
	// writer to close the connection after the answer; a wrapper would
	// hide it from that.
	if sw, ok := w.(*statusWriter); ok {
		w = sw.ResponseWriter
	}
	body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, int64(limit)))
	return body, nil, err
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

// jsonContentType is the Content-Type of every answer, shared: net/http
// only reads it.
var jsonContentType = []string{"application/json"}

// emptyObject is the answer of most publishes, encoded once.
var emptyObject = []byte("{}\n")

func writeJSON(w http.ResponseWriter, status int, v any) {
	if _, ok := v.(struct{}); ok {
		w.Header()["Content-Type"] = jsonContentType
		w.WriteHeader(status)
		w.Write(emptyObject)
		return
	}
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
