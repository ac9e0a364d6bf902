package appauth

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Defaults of Options.
const (
	DefaultMaxBodyBytes    = 64 << 10
	DefaultMaxBatch        = 100
	DefaultSubscriptionTTL = time.Hour
	DefaultCSRFHeader      = "X-CSRF-Token"
)

// Request is what the decision function is asked about: one channel (or,
// for user authentication, none) for one connection.
type Request struct {
	// HTTP is the request, for its cookies and headers. Its body has been
	// read: use Params.
	HTTP *http.Request
	// SocketID is the Pusher socket id; empty in a Centrifuge batch.
	SocketID string
	// ClientID is the Centrifuge client id of a Centrifuge batch; empty
	// otherwise.
	ClientID string
	// Channel is the channel asked for; empty for user authentication.
	Channel string
	// Params are the request's parameters (form, query or JSON body; a JSON
	// value that is not a string is kept as its JSON text), socket_id,
	// channel_name and callback included.
	Params url.Values
}

// Decision is the app's answer. The zero Decision denies.
type Decision struct {
	Allow bool
	// UserID is the user of a presence channel or of user authentication,
	// and the sub of a Centrifuge subscription token. Required for those.
	UserID string
	// UserInfo is the presence member's or signed-in user's user_info, and
	// the info of a Centrifuge subscription token: any value encoding/json
	// can marshal (a json.RawMessage is used as it is), or nil.
	UserInfo any
	// Watchlist is the signed-in user's watchlist (user authentication only).
	Watchlist []string
}

// Allow allows the request, with no user.
func Allow() Decision { return Decision{Allow: true} }

// AllowUser allows the request as the user with this id and info.
func AllowUser(id string, info any) Decision {
	return Decision{Allow: true, UserID: id, UserInfo: info}
}

// Deny refuses the request (403).
func Deny() Decision { return Decision{} }

// DecideFunc is the app's one decision: may this request have what it asks
// for? It runs on the request's goroutine and may do I/O.
type DecideFunc func(r *Request) Decision

// Options configure an Authorizer. Key, Secret and Decide are required;
// every other zero value is a documented default.
type Options struct {
	// Key and Secret are the app's key and secret.
	Key, Secret string
	// EncryptionMasterKey, 32 bytes, lets the channel handler answer
	// private-encrypted channels with their shared_secret; without it they
	// are refused (403).
	EncryptionMasterKey []byte
	// Tokens signs the subscription tokens of Centrifuge batches
	// ({"client", "channels"}); nil: such requests are refused (403).
	Tokens *TokenSigner
	// SubscriptionTTL is the lifetime of those tokens (default 1h).
	SubscriptionTTL time.Duration
	// SubscriptionAudience and SubscriptionIssuer, when set, become the aud
	// and iss of those tokens. An app with jwt_audience or jwt_issuer
	// (which apps sharing a JWT key must set) refuses tokens without them.
	SubscriptionAudience, SubscriptionIssuer string
	// Decide is the app's decision.
	Decide DecideFunc

	// AllowedOrigins are the other origins ("https://app.example",
	// "http://localhost:8080": scheme, host and port, no path) whose pages
	// may use the handlers: by JSONP, and by POST with CORS. A JSONP request
	// from any other site is refused (see the package documentation).
	AllowedOrigins []string

	// CSRFToken, when set, makes every POST carry the header CSRFHeader with
	// exactly the value CSRFToken returns for the request (for instance the
	// session's token, or a cookie's value: CSRFCookie); without it, or with
	// an empty expected value, the request is refused (403). JSONP GETs
	// cannot send headers: the origin check guards them.
	CSRFToken func(r *http.Request) string
	// CSRFHeader is the header checked (default X-CSRF-Token, which is also
	// Laravel Echo's X-CSRF-TOKEN: header names ignore case).
	CSRFHeader string

	// MaxBodyBytes bounds a request body (default 64 KiB).
	MaxBodyBytes int64
	// MaxBatch bounds the channels of one batch request (default 100).
	MaxBatch int

	// Now is the clock of token expiry (default time.Now).
	Now func() time.Time
}

// Authorizer serves an app's authorization endpoints. Build it with New; it
// is safe for concurrent use.
type Authorizer struct {
	opts    Options
	signer  *Signer
	origins map[string]bool
}

// New checks the options and returns their authorizer.
func New(o Options) (*Authorizer, error) {
	s, err := NewSigner(o.Key, o.Secret, o.EncryptionMasterKey)
	if err != nil {
		return nil, err
	}
	if o.Decide == nil {
		return nil, errors.New("appauth: Options.Decide is required")
	}
	a := &Authorizer{opts: o, signer: s, origins: map[string]bool{}}
	for _, orig := range o.AllowedOrigins {
		norm, err := parseOrigin(orig)
		if err != nil {
			return nil, fmt.Errorf("appauth: allowed origin %q: %w", orig, err)
		}
		a.origins[norm] = true
	}
	if a.opts.SubscriptionTTL <= 0 {
		a.opts.SubscriptionTTL = DefaultSubscriptionTTL
	}
	if a.opts.MaxBodyBytes <= 0 {
		a.opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if a.opts.MaxBatch <= 0 {
		a.opts.MaxBatch = DefaultMaxBatch
	}
	if a.opts.CSRFHeader == "" {
		a.opts.CSRFHeader = DefaultCSRFHeader
	}
	if a.opts.Now == nil {
		a.opts.Now = time.Now
	}
	return a, nil
}

// Signer returns the authorizer's signer.
func (a *Authorizer) Signer() *Signer { return a.signer }

// ChannelHandler serves channel authorization (pusher-js's /pusher/auth,
// Laravel Echo's /broadcasting/auth). It answers:
//   - a POST of socket_id and channel_name, as a form or a JSON object, with
//     {auth}, {auth, channel_data} for presence or {auth, shared_secret} for
//     private-encrypted channels;
//   - a POST of the pusher-js-auth batch form (socket_id, channel_name[0],
//     channel_name[1], …) with an object keyed by channel whose values are
//     {"status":200,"data":{…}} or {"status":403};
//   - a POST of Centrifuge's JSON batch {"client":…,"channels":[…]} with an
//     object keyed by channel whose values are {"token":…,"info":…} or
//     {"status":403};
//   - a GET with callback (pusher-js's JSONP transport) with a script calling
//     the callback, once the request's origin passed the check;
//   - an OPTIONS preflight from an allowed origin.
//
// A denial is 403 Forbidden; a malformed request is 400 with its reason.
func (a *Authorizer) ChannelHandler() http.Handler {
	return a.handler(a.channel)
}

// UserHandler serves user authentication (pusher-js's /pusher/user-auth):
// socket_id → {auth, user_data}, where user_data holds the decision's user
// id, user_info and watchlist. The decision function sees an empty Channel.
// Transports, origin, CORS and CSRF rules are those of ChannelHandler.
func (a *Authorizer) UserHandler() http.Handler {
	return a.handler(a.user)
}

// httpError is an answer other than 200.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &httpError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

var (
	errForbidden = &httpError{http.StatusForbidden, "Forbidden"}
)

// serveFunc answers one parsed request with a value to encode as JSON.
type serveFunc func(r *http.Request, p url.Values, jsonBody map[string]json.RawMessage) (any, error)

func (a *Authorizer) handler(serve serveFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		h.Add("Vary", "Origin")
		origin := r.Header.Get("Origin")
		// CORS is decided by Origin alone: a Referer says nothing about
		// who reads the answer, and Origin null (sandboxed frames, data:
		// documents, redirects) can be sent from any site.
		allowedCORS := false
		if norm, err := parseOrigin(origin); origin != "null" && err == nil {
			allowedCORS = a.origins[norm]
		}
		if allowedCORS {
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Allow-Credentials", "true")
		}
		var callback string
		var out any
		var err error
		switch r.Method {
		case http.MethodOptions:
			a.preflight(w, r, allowedCORS)
			return
		case http.MethodGet, http.MethodHead:
			callback, out, err = a.jsonp(r, serve)
		case http.MethodPost:
			out, err = a.post(r, serve)
		default:
			h.Set("Allow", "GET, POST, OPTIONS")
			err = &httpError{http.StatusMethodNotAllowed, "Method Not Allowed"}
		}
		if err != nil {
			var he *httpError
			if !errors.As(err, &he) {
				he = &httpError{http.StatusInternalServerError, err.Error()}
			}
			http.Error(w, he.msg, he.status)
			return
		}
		body, err := json.Marshal(out)
		if err != nil {
			http.Error(w, "appauth: encoding the answer: "+err.Error(), http.StatusInternalServerError)
			return
		}
		if callback != "" {
			h.Set("Content-Type", "application/javascript; charset=utf-8")
			h.Set("X-Content-Type-Options", "nosniff")
			body = slices.Concat([]byte(callback+"("), body, []byte(");\n"))
		} else {
			h.Set("Content-Type", "application/json")
		}
		w.Write(body)
	})
}

func (a *Authorizer) preflight(w http.ResponseWriter, r *http.Request, allowed bool) {
	if !allowed || r.Header.Get("Access-Control-Request-Method") == "" {
		http.Error(w, "Forbidden", http.StatusForbidden)
		return
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", "POST")
	if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
		// Only allowed origins get here, and the handlers read no header
		// but the CSRF one: any header they ask for may be sent.
		h.Set("Access-Control-Allow-Headers", req)
	}
	h.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
}

func (a *Authorizer) jsonp(r *http.Request, serve serveFunc) (string, any, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return "", nil, badRequest("malformed query: %v", err)
	}
	cb := q.Get("callback")
	if cb == "" {
		return "", nil, badRequest("a GET must be a JSONP request, with a callback parameter; use POST otherwise")
	}
	if !ValidCallback(cb) {
		return "", nil, badRequest("callback is not of the form Pusher.auth_callbacks['N']")
	}
	if !a.sameOriginOrAllowed(r) {
		return "", nil, errForbidden
	}
	out, err := serve(r, q, nil)
	return cb, out, err
}

func (a *Authorizer) post(r *http.Request, serve serveFunc) (any, error) {
	if a.opts.CSRFToken != nil {
		want := a.opts.CSRFToken(r)
		got := r.Header.Get(a.opts.CSRFHeader)
		if want == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
			return nil, &httpError{http.StatusForbidden, "Forbidden: missing or wrong " + a.opts.CSRFHeader + " header"}
		}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, a.opts.MaxBodyBytes+1))
	if err != nil {
		return nil, badRequest("reading the body: %v", err)
	}
	if int64(len(body)) > a.opts.MaxBodyBytes {
		return nil, &httpError{http.StatusRequestEntityTooLarge, fmt.Sprintf("body over %d bytes", a.opts.MaxBodyBytes)}
	}
	if isJSON(r.Header.Get("Content-Type")) {
		obj, p, err := parseJSONBody(body)
		if err != nil {
			return nil, err
		}
		return serve(r, p, obj)
	}
	p, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, badRequest("malformed form body: %v", err)
	}
	return serve(r, p, nil)
}

func isJSON(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	mt = strings.TrimSpace(strings.ToLower(mt))
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

// parseJSONBody reads a JSON object body into its raw members and the
// parameters they make: strings as they are, other values as JSON text.
//
// A member named twice is refused, as a form parameter given twice is:
// encoding/json would keep the last, other parsers keep the first, so a
// proxy, middleware or log that read the body before the handler could
// have seen another socket_id, channel_name or user_id than the one
// decided on and signed.
func parseJSONBody(body []byte) (map[string]json.RawMessage, url.Values, error) {
	notObject := badRequest("the body is not a JSON object")
	dec := json.NewDecoder(bytes.NewReader(body))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, nil, notObject
	}
	obj := map[string]json.RawMessage{}
	for dec.More() {
		t, err := dec.Token()
		k, ok := t.(string)
		if err != nil || !ok {
			return nil, nil, notObject
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, nil, notObject
		}
		if _, dup := obj[k]; dup {
			return nil, nil, badRequest("%s given twice", truncate(k, 64))
		}
		obj[k] = v
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return nil, nil, notObject
	}
	// Anything after the object, even a lone ] or } that dec.More would
	// not report, is data the handler did not read.
	if len(bytes.TrimSpace(body[dec.InputOffset():])) > 0 {
		return nil, nil, badRequest("the body has data after its JSON object")
	}
	p := url.Values{}
	for k, v := range obj {
		var s string
		if json.Unmarshal(v, &s) == nil {
			p.Set(k, s)
		} else if k == "socket_id" || k == "channel_name" {
			return nil, nil, badRequest("%s must be a JSON string", k)
		} else {
			p.Set(k, string(v))
		}
	}
	return obj, p, nil
}

// one returns the single value of key, or an error naming it.
func one(p url.Values, key string) (string, error) {
	vs, ok := p[key]
	switch {
	case !ok || len(vs) == 0 || vs[0] == "":
		return "", badRequest("missing %s", key)
	case len(vs) > 1:
		return "", badRequest("%s given %d times", key, len(vs))
	}
	return vs[0], nil
}

func socketID(p url.Values) (string, error) {
	id, err := one(p, "socket_id")
	if err != nil {
		return "", err
	}
	if !ValidSocketID(id) {
		return "", badRequest("socket_id %q is not digits.digits", truncate(id, 64))
	}
	return id, nil
}

func (a *Authorizer) channel(r *http.Request, p url.Values, obj map[string]json.RawMessage) (any, error) {
	if obj != nil {
		if _, ok := obj["channels"]; ok {
			return a.centrifugeBatch(r, p, obj)
		}
	}
	sid, err := socketID(p)
	if err != nil {
		return nil, err
	}
	if batch, err := batchChannels(p, a.opts.MaxBatch); err != nil {
		return nil, err
	} else if batch != nil {
		if obj != nil {
			return nil, badRequest("the batch form is a form body, not JSON")
		}
		out := make(map[string]any, len(batch))
		for _, ch := range batch {
			auth, err := a.authorize(r, p, sid, ch)
			var he *httpError
			switch {
			case err == nil:
				out[ch] = batchItem{Status: http.StatusOK, Data: &auth}
			case errors.As(err, &he):
				out[ch] = batchItem{Status: he.status}
			default:
				return nil, err
			}
		}
		return out, nil
	}
	ch, err := one(p, "channel_name")
	if err != nil {
		return nil, err
	}
	auth, err := a.authorize(r, p, sid, ch)
	if err != nil {
		return nil, err
	}
	return auth, nil
}

type batchItem struct {
	Status int          `json:"status"`
	Data   *ChannelAuth `json:"data,omitempty"`
}

// batchChannels collects the channels of the pusher-js-auth batch form,
// channel_name[0], channel_name[1], … in index order; nil when the form has
// none.
func batchChannels(p url.Values, max int) ([]string, error) {
	type indexed struct {
		i  int
		ch string
	}
	var got []indexed
	for k, vs := range p {
		rest, ok := strings.CutPrefix(k, "channel_name[")
		if !ok {
			continue
		}
		idx, ok := strings.CutSuffix(rest, "]")
		i, err := strconv.Atoi(idx)
		if !ok || err != nil || i < 0 || len(idx) > 6 {
			return nil, badRequest("batch key %q is not channel_name[N]", truncate(k, 64))
		}
		if len(vs) != 1 {
			return nil, badRequest("%s given %d times", k, len(vs))
		}
		got = append(got, indexed{i, vs[0]})
		if len(got) > max {
			return nil, badRequest("more than %d channels in one batch", max)
		}
	}
	if got == nil {
		return nil, nil
	}
	if _, ok := p["channel_name"]; ok {
		return nil, badRequest("both channel_name and channel_name[N]")
	}
	sort.Slice(got, func(i, j int) bool { return got[i].i < got[j].i })
	out := make([]string, len(got))
	seen := make(map[string]bool, len(got))
	for i, g := range got {
		if seen[g.ch] {
			return nil, badRequest("channel %q given twice in the batch", truncate(g.ch, 64))
		}
		seen[g.ch] = true
		out[i] = g.ch
	}
	return out, nil
}

// authorize decides and signs one channel. Refusals are *httpError.
func (a *Authorizer) authorize(r *http.Request, p url.Values, sid, ch string) (ChannelAuth, error) {
	if err := ValidChannel(ch); err != nil {
		return ChannelAuth{}, badRequest("channel_name %q: %v", truncate(ch, 64), strings.TrimPrefix(err.Error(), "appauth: "))
	}
	if strings.HasPrefix(ch, "private-encrypted-") && a.signer.masterKey == nil {
		return ChannelAuth{}, &httpError{http.StatusForbidden, "Forbidden: no encryption master key is configured for private-encrypted channels"}
	}
	d := a.opts.Decide(&Request{HTTP: r, SocketID: sid, Channel: ch, Params: p})
	if !d.Allow {
		return ChannelAuth{}, errForbidden
	}
	var m *Member
	if strings.HasPrefix(ch, "presence-") {
		m = &Member{UserID: d.UserID, UserInfo: d.UserInfo}
	}
	auth, err := a.signer.AuthorizeChannel(sid, ch, m)
	if err != nil {
		// The request was valid: what failed is the decision's user.
		return ChannelAuth{}, fmt.Errorf("appauth: the decision for %s: %w", ch, err)
	}
	return auth, nil
}

func (a *Authorizer) user(r *http.Request, p url.Values, _ map[string]json.RawMessage) (any, error) {
	sid, err := socketID(p)
	if err != nil {
		return nil, err
	}
	d := a.opts.Decide(&Request{HTTP: r, SocketID: sid, Params: p})
	if !d.Allow {
		return nil, errForbidden
	}
	auth, err := a.signer.AuthenticateUser(sid, User{ID: d.UserID, UserInfo: d.UserInfo, Watchlist: d.Watchlist})
	if err != nil {
		return nil, fmt.Errorf("appauth: the decision for user authentication: %w", err)
	}
	return auth, nil
}

// Centrifuge limits: client ids are UUIDs, channels Centrifugo names.
const (
	maxClientIDLength          = 128
	maxCentrifugeChannelLength = 255
)

type centrifugeItem struct {
	Status int             `json:"status,omitempty"`
	Token  string          `json:"token,omitempty"`
	Info   json.RawMessage `json:"info,omitempty"`
}

func (a *Authorizer) centrifugeBatch(r *http.Request, p url.Values, obj map[string]json.RawMessage) (any, error) {
	var client string
	if err := json.Unmarshal(obj["client"], &client); err != nil || client == "" {
		return nil, badRequest("missing client")
	}
	if len(client) > maxClientIDLength || !printable(client) {
		return nil, badRequest("client is not a client id")
	}
	var chans []string
	if err := json.Unmarshal(obj["channels"], &chans); err != nil || len(chans) == 0 {
		return nil, badRequest("channels is not a non-empty array of strings")
	}
	if len(chans) > a.opts.MaxBatch {
		return nil, badRequest("more than %d channels in one batch", a.opts.MaxBatch)
	}
	if a.opts.Tokens == nil {
		return nil, &httpError{http.StatusForbidden, "Forbidden: no JWT key is configured for subscription tokens"}
	}
	seen := make(map[string]bool, len(chans))
	for _, ch := range chans {
		if ch == "" || len(ch) > maxCentrifugeChannelLength || !utf8.ValidString(ch) || strings.ContainsFunc(ch, unicode.IsControl) {
			return nil, badRequest("channel %q is not a channel name", truncate(ch, 64))
		}
		if seen[ch] {
			return nil, badRequest("channel %q given twice", truncate(ch, 64))
		}
		seen[ch] = true
	}
	now := a.opts.Now()
	out := make(map[string]centrifugeItem, len(chans))
	for _, ch := range chans {
		d := a.opts.Decide(&Request{HTTP: r, ClientID: client, Channel: ch, Params: p})
		if !d.Allow {
			out[ch] = centrifugeItem{Status: http.StatusForbidden}
			continue
		}
		var info json.RawMessage
		if d.UserInfo != nil {
			s, err := marshal(d.UserInfo)
			if err != nil {
				return nil, fmt.Errorf("appauth: the decision's info for %s: %w", ch, err)
			}
			info = json.RawMessage(s)
		}
		tok, err := a.opts.Tokens.Subscription(SubscriptionClaims{
			Sub: d.UserID, Channel: ch, Client: client, ExpiresAt: now.Add(a.opts.SubscriptionTTL), Info: info,
			Audience: a.opts.SubscriptionAudience, Issuer: a.opts.SubscriptionIssuer,
		}, now)
		if err != nil {
			return nil, err
		}
		out[ch] = centrifugeItem{Token: tok, Info: info}
	}
	return out, nil
}

// printable reports whether s is printable ASCII with no space or
// control character.
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}
