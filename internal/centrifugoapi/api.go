// Package centrifugoapi serves the Centrifugo-style server HTTP API, the one
// Centrifugo's server SDKs (cent, gocent, phpcent) speak: POST /api/<method>
// with a JSON body, answered {"result":…} or {"error":{"code":N,"message":…}}.
// It publishes to the same hub as the Pusher REST API, so a publication
// reaches Pusher and Centrifugo subscribers alike.
//
// The API key identifies the app: every app with an api_key is a candidate,
// each compared in constant time. A request without a key, or with one no
// app has, is answered 401 with an empty body, before its body is read.
//
// What Herald does not have answers 108 "not available": history,
// subscribe, refresh, rpc, batch, and disconnect or unsubscribe of one
// client or with a custom code. unsubscribe reaches the clients whose
// protocol can be told (Centrifugo's); Pusher's cannot, and keep the
// subscription. Herald's presence is by user, so the
// presence result has one entry per user, keyed by the user id.
//
// A publication's Pusher event name is its tags.event, "message" when it has
// none; Pusher subscribers receive the data as its JSON text, as if a Pusher
// REST trigger had sent that text.
package centrifugoapi

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/heraldhq/herald/internal/apps"
	"github.com/heraldhq/herald/internal/hub"
)

// Config configures the API.
type Config struct {
	Apps *apps.Registry
	Hub  *hub.Hub
	Log  *slog.Logger
	// NodeID and NodeName identify this node in info; Version is Herald's.
	NodeID, NodeName, Version string
	// Started is when the node started, for info's uptime.
	Started time.Time
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Authenticated, if not nil, is called with each request whose key has
	// been accepted, before its body is read.
	Authenticated func(*http.Request)
}

// API is the handler of POST /api/<method> and the legacy POST /api.
type API struct {
	cfg Config
}

// New returns the API handler.
func New(cfg Config) *API {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Started.IsZero() {
		cfg.Started = cfg.Now()
	}
	return &API{cfg: cfg}
}

// Prefix is the path the API is served under.
const Prefix = "/api"

// Error codes of the API (Centrifugo's).
const (
	CodeInternal     = 100
	CodeUnknownChan  = 102
	CodeNotFound     = 104
	CodeBadRequest   = 107
	CodeNotAvailable = 108
)

// Error is an API error, the "error" of a reply.
type Error struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

var (
	errInternal     = &Error{CodeInternal, "internal server error"}
	errUnknownChan  = &Error{CodeUnknownChan, "unknown channel"}
	errNotFound     = &Error{CodeNotFound, "not found"}
	errBadRequest   = &Error{CodeBadRequest, "bad request"}
	errNotAvailable = &Error{CodeNotAvailable, "not available"}
)

// httpStatus is the status of an error in the transport error mode.
func (e *Error) httpStatus() int {
	switch e.Code {
	case CodeInternal:
		return http.StatusInternalServerError
	case CodeUnknownChan, CodeNotFound:
		return http.StatusNotFound
	default:
		return http.StatusBadRequest
	}
}

// reply is one answer: a result or an error.
type reply struct {
	Result any    `json:"result,omitempty"`
	Error  *Error `json:"error,omitempty"`
}

func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	method, legacy := "", r.URL.Path == Prefix
	if !legacy {
		var ok bool
		method, ok = strings.CutPrefix(r.URL.Path, Prefix+"/")
		if !ok || method == "" || strings.Contains(method, "/") {
			refuseUnread(w, r, http.StatusNotFound, "404 page not found\n")
			return
		}
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		refuseUnread(w, r, http.StatusMethodNotAllowed, "")
		return
	}
	app := a.appFor(r)
	if app == nil {
		refuseUnread(w, r, http.StatusUnauthorized, "")
		return
	}
	if !legacy && methods[method] == nil {
		refuseUnread(w, r, http.StatusNotFound, "404 page not found\n")
		return
	}
	if r.ContentLength > int64(app.MaxBodyBytes) {
		refuseUnread(w, r, http.StatusRequestEntityTooLarge, "Request Entity Too Large\n")
		return
	}
	if a.cfg.Authenticated != nil {
		a.cfg.Authenticated(r)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(app.MaxBodyBytes)))
	if err != nil {
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			plain(w, http.StatusRequestEntityTooLarge, "Request Entity Too Large\n")
		case errors.Is(err, os.ErrDeadlineExceeded):
			w.Header().Set("Connection", "close")
			plain(w, http.StatusRequestTimeout, "Request Timeout\n")
		default:
			plain(w, http.StatusBadRequest, "Bad Request\n")
		}
		return
	}
	if !app.IsEnabled() {
		plain(w, http.StatusForbidden, "Forbidden\n")
		return
	}
	if legacy {
		a.serveLegacy(w, r.Context(), app, body)
		return
	}
	params, err := decodeParams(body)
	if err != nil {
		plain(w, http.StatusBadRequest, "Bad Request\n")
		return
	}
	res, apiErr := a.call(r.Context(), app, method, params)
	if apiErr != nil && strings.EqualFold(r.Header.Get("X-Centrifugo-Error-Mode"), "transport") {
		writeJSON(w, apiErr.httpStatus(), apiErr)
		return
	}
	writeJSON(w, http.StatusOK, reply{Result: res, Error: apiErr})
}

// call runs one method on raw params (a JSON object, or empty).
func (a *API) call(ctx context.Context, app *apps.App, method string, params json.RawMessage) (any, *Error) {
	m := methods[method]
	if m == nil {
		return nil, errNotFound
	}
	res, apiErr := m(a, ctx, app, params)
	if apiErr == errInternal {
		a.cfg.Log.Warn("server api request failed", "app_id", app.ID, "method", method)
	}
	return res, apiErr
}

// serveLegacy answers the single endpoint of earlier Centrifugo releases:
// newline-delimited {"method":"…","params":{…}} commands, each answered by
// one line. Methods are named; the numeric form is not supported.
func (a *API) serveLegacy(w http.ResponseWriter, ctx context.Context, app *apps.App, body []byte) {
	var out bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, len(body)+1)
	n := 0
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var cmd struct {
			Method json.RawMessage `json:"method"`
			Params json.RawMessage `json:"params"`
		}
		if err := decodeStrict(line, &cmd); err != nil {
			plain(w, http.StatusBadRequest, "Bad Request\n")
			return
		}
		var name string
		var rep reply
		if json.Unmarshal(cmd.Method, &name) != nil {
			rep.Error = errNotFound
		} else {
			rep.Result, rep.Error = a.call(ctx, app, name, cmd.Params)
		}
		if rep.Error == nil && rep.Result == nil {
			rep.Result = struct{}{}
		}
		b, _ := json.Marshal(rep)
		out.Write(b)
		out.WriteByte('\n')
		n++
	}
	if n == 0 {
		plain(w, http.StatusBadRequest, "Bad Request\n")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(out.Bytes())
}

// appFor finds the app whose API key the request carries: X-API-Key, or
// Authorization: apikey <key>. Keys are compared as SHA-256 digests in
// constant time, against every app, so that neither a key's length nor
// which app it matched shows in the time taken.
func (a *API) appFor(r *http.Request) *apps.App {
	key := r.Header.Get("X-API-Key")
	if key == "" {
		if scheme, rest, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " "); ok && strings.EqualFold(scheme, "apikey") {
			key = strings.TrimSpace(rest)
		}
	}
	if key == "" {
		return nil
	}
	sum := sha256.Sum256([]byte(key))
	var found *apps.App
	for _, app := range a.cfg.Apps.All() {
		if app.APIKey == "" {
			continue
		}
		want := sha256.Sum256([]byte(app.APIKey))
		if subtle.ConstantTimeCompare(sum[:], want[:]) == 1 && found == nil {
			found = app
		}
	}
	return found
}

// decodeParams checks that a method's body is one JSON object (or empty,
// for methods without parameters).
func decodeParams(body []byte) (json.RawMessage, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, nil
	}
	var raw json.RawMessage
	if err := decodeStrict(body, &raw); err != nil {
		return nil, err
	}
	if t := bytes.TrimSpace(raw); len(t) == 0 || t[0] != '{' {
		return nil, errors.New("the body is not a JSON object")
	}
	return raw, nil
}

// decodeStrict decodes exactly one JSON value into v: anything after it is
// an error. Unknown fields are ignored, as Centrifugo does: SDKs send
// options Herald has no use for.
func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the JSON value")
	}
	return nil
}

// unreadGrace is how long a refused request's body may go on arriving
// before the connection closes, as in the Pusher REST API.
const unreadGrace = 500 * time.Millisecond

// refuseUnread answers a request whose body will not be read, and closes
// the connection after the answer.
func refuseUnread(w http.ResponseWriter, r *http.Request, status int, text string) {
	w.Header().Set("Connection", "close")
	if r.ContentLength != 0 {
		http.NewResponseController(w).SetReadDeadline(time.Now().Add(unreadGrace))
	}
	plain(w, status, text)
}

func plain(w http.ResponseWriter, status int, text string) {
	if text != "" {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
	}
	w.WriteHeader(status)
	io.WriteString(w, text)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":{"code":100,"message":"internal server error"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
