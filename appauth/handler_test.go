package appauth

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// decideTest allows everything except channels starting with
// "private-denied", with the presence user from the user_id parameter.
func decideTest(r *Request) Decision {
	if strings.HasPrefix(r.Channel, "private-denied") {
		return Deny()
	}
	id := r.Params.Get("user_id")
	if id == "" {
		id = "u1"
	}
	return Decision{Allow: true, UserID: id, UserInfo: map[string]string{"name": "N"}, Watchlist: []string{"w"}}
}

func newTestAuthorizer(t *testing.T, mod func(o *Options)) *Authorizer {
	t.Helper()
	o := Options{Key: "key", Secret: "secret", Decide: decideTest, EncryptionMasterKey: make([]byte, 32),
		AllowedOrigins: []string{"http://good.example:8080"}}
	if mod != nil {
		mod(&o)
	}
	a, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

type answer struct {
	status int
	header http.Header
	body   string
}

func do(h http.Handler, method, target, contentType, body string, headers ...string) answer {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Set(headers[i], headers[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return answer{w.Code, w.Header(), w.Body.String()}
}

const form = "application/x-www-form-urlencoded"

func TestChannelSingle(t *testing.T) {
	a := newTestAuthorizer(t, nil)
	h := a.ChannelHandler()
	s := a.Signer()
	want := func(ch string, m *Member) string {
		auth, err := s.AuthorizeChannel("1.2", ch, m)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(auth)
		return string(b)
	}
	tests := []struct {
		name, ct, body, want string
	}{
		{"form private", form, "socket_id=1.2&channel_name=private-a", want("private-a", nil)},
		{"form with extra params", form, "socket_id=1.2&channel_name=private-a&foo=bar", want("private-a", nil)},
		{"no content type", "", "socket_id=1.2&channel_name=private-a", want("private-a", nil)},
		{"json private", "application/json", `{"socket_id":"1.2","channel_name":"private-a"}`, want("private-a", nil)},
		{"json; charset", "application/json; charset=utf-8", `{"socket_id":"1.2","channel_name":"private-a","n":1}`, want("private-a", nil)},
		{"form presence", form, "socket_id=1.2&channel_name=presence-a&user_id=bob",
			want("presence-a", &Member{UserID: "bob", UserInfo: map[string]string{"name": "N"}})},
		{"encrypted", form, "socket_id=1.2&channel_name=private-encrypted-a", want("private-encrypted-a", nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := do(h, "POST", "/pusher/auth", tt.ct, tt.body)
			if got.status != 200 || got.body != tt.want {
				t.Fatalf("%d %s, want 200 %s", got.status, got.body, tt.want)
			}
			if ct := got.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			if cc := got.header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control %q", cc)
			}
		})
	}
	// The encrypted answer carries the channel's key.
	var enc ChannelAuth
	json.Unmarshal([]byte(want("private-encrypted-a", nil)), &enc)
	if enc.SharedSecret == "" {
		t.Error("no shared_secret for private-encrypted-a")
	}
}

func TestChannelRefusals(t *testing.T) {
	a := newTestAuthorizer(t, nil)
	h := a.ChannelHandler()
	noKey := newTestAuthorizer(t, func(o *Options) { o.EncryptionMasterKey = nil }).ChannelHandler()
	tests := []struct {
		name    string
		h       http.Handler
		method  string
		ct      string
		body    string
		status  int
		inError string
	}{
		{"denied", h, "POST", form, "socket_id=1.2&channel_name=private-denied", 403, "Forbidden"},
		{"encrypted without master key", noKey, "POST", form, "socket_id=1.2&channel_name=private-encrypted-a", 403, "master key"},
		{"no socket_id", h, "POST", form, "channel_name=private-a", 400, "missing socket_id"},
		{"empty socket_id", h, "POST", form, "socket_id=&channel_name=private-a", 400, "missing socket_id"},
		{"two socket_ids", h, "POST", form, "socket_id=1.2&socket_id=3.4&channel_name=private-a", 400, "2 times"},
		{"socket id not digits.digits", h, "POST", form, "socket_id=1.2x&channel_name=private-a", 400, "digits.digits"},
		{"no channel_name", h, "POST", form, "socket_id=1.2", 400, "missing channel_name"},
		{"invalid channel", h, "POST", form, "socket_id=1.2&channel_name=private-a%20b", 400, "invalid channel"},
		{"server-to-user channel", h, "POST", form, "socket_id=1.2&channel_name=%23server-to-user-x", 400, "invalid channel"},
		{"malformed form", h, "POST", form, "socket_id=1.2&channel_name=%zz", 400, "malformed"},
		{"json not an object", h, "POST", "application/json", `["socket_id"]`, 400, "JSON object"},
		{"json trailing data", h, "POST", "application/json", `{"socket_id":"1.2","channel_name":"private-a"} {}`, 400, "after"},
		{"json socket id a number", h, "POST", "application/json", `{"socket_id":1.2,"channel_name":"private-a"}`, 400, "JSON string"},
		{"json trailing brace", h, "POST", "application/json", `{"socket_id":"1.2","channel_name":"private-a"}}`, 400, "after"},
		{"json two socket_ids", h, "POST", "application/json", `{"socket_id":"1.2","socket_id":"3.4","channel_name":"private-a"}`, 400, "socket_id given twice"},
		{"json two channel_names", h, "POST", "application/json", `{"socket_id":"1.2","channel_name":"private-a","channel_name":"private-b"}`, 400, "channel_name given twice"},
		{"json escaped duplicate", h, "POST", "application/json", `{"socket_id":"1.2","channel_name":"private-a","channel\u005fname":"private-b"}`, 400, "channel_name given twice"},
		{"json two params", h, "POST", "application/json", `{"socket_id":"1.2","channel_name":"presence-a","user_id":"a","user_id":"b"}`, 400, "user_id given twice"},
		{"json two clients", h, "POST", "application/json", `{"client":"c-1","client":"c-2","channels":["$a"]}`, 400, "client given twice"},
		{"GET without callback", h, "GET", "", "", 400, "callback"},
		{"PUT", h, "PUT", form, "socket_id=1.2&channel_name=private-a", 405, "Method"},
		{"body too large", h, "POST", form, "socket_id=1.2&channel_name=private-a&x=" + strings.Repeat("a", DefaultMaxBodyBytes), 413, "body over"},
		{"batch and single", h, "POST", form, "socket_id=1.2&channel_name=private-a&channel_name[0]=private-b", 400, "both"},
		{"batch bad index", h, "POST", form, "socket_id=1.2&channel_name[x]=private-b", 400, "channel_name[N]"},
		{"batch duplicate", h, "POST", form, "socket_id=1.2&channel_name[0]=private-b&channel_name[1]=private-b", 400, "twice"},
		{"batch too large", h, "POST", form, "socket_id=1.2" + manyChannels(DefaultMaxBatch+1), 400, "more than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := do(tt.h, tt.method, "/pusher/auth", tt.ct, tt.body)
			if got.status != tt.status || !strings.Contains(got.body, tt.inError) {
				t.Fatalf("%d %q, want %d with %q", got.status, got.body, tt.status, tt.inError)
			}
		})
	}
}

func manyChannels(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString("&channel_name[" + itoa(i) + "]=private-" + itoa(i))
	}
	return b.String()
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestPresenceDecisionWithoutUserIs500(t *testing.T) {
	a := newTestAuthorizer(t, func(o *Options) { o.Decide = func(*Request) Decision { return Allow() } })
	got := do(a.ChannelHandler(), "POST", "/", form, "socket_id=1.2&channel_name=presence-a")
	if got.status != 500 {
		t.Fatalf("%d %s, want 500: allowing presence with no user is the app's bug", got.status, got.body)
	}
	if got := do(a.UserHandler(), "POST", "/", form, "socket_id=1.2"); got.status != 500 {
		t.Fatalf("user auth without user id: %d %s, want 500", got.status, got.body)
	}
}

func TestDecisionSeesRequest(t *testing.T) {
	var seen *Request
	a := newTestAuthorizer(t, func(o *Options) {
		o.Decide = func(r *Request) Decision { seen = r; return Allow() }
	})
	r := httptest.NewRequest("POST", "/pusher/auth", strings.NewReader("socket_id=1.2&channel_name=private-a&team=7"))
	r.Header.Set("Content-Type", form)
	r.AddCookie(&http.Cookie{Name: "session", Value: "s1"})
	a.ChannelHandler().ServeHTTP(httptest.NewRecorder(), r)
	if seen == nil || seen.SocketID != "1.2" || seen.Channel != "private-a" || seen.Params.Get("team") != "7" {
		t.Fatalf("decision saw %+v", seen)
	}
	if c, err := seen.HTTP.Cookie("session"); err != nil || c.Value != "s1" {
		t.Errorf("the decision cannot read the session cookie: %v", err)
	}
}

func TestBatchPusherJSAuth(t *testing.T) {
	a := newTestAuthorizer(t, nil)
	s := a.Signer()
	// As pusher-js-auth sends it: a leading '&', literal brackets, params
	// last.
	body := "&socket_id=1.2&channel_name[0]=private-a&channel_name[1]=presence-b&channel_name[2]=private-denied-c" +
		"&channel_name[3]=private-encrypted-d&channel_name[4]=bad%20name&user_id=bob"
	got := do(a.ChannelHandler(), "POST", "/pusher/auth", form, body)
	if got.status != 200 {
		t.Fatalf("%d %s", got.status, got.body)
	}
	var out map[string]struct {
		Status int          `json:"status"`
		Data   *ChannelAuth `json:"data"`
	}
	if err := json.Unmarshal([]byte(got.body), &out); err != nil {
		t.Fatal(err)
	}
	if len(out) != 5 {
		t.Fatalf("%d channels in %s", len(out), got.body)
	}
	pa, _ := s.AuthorizeChannel("1.2", "private-a", nil)
	pb, _ := s.AuthorizeChannel("1.2", "presence-b", &Member{UserID: "bob", UserInfo: map[string]string{"name": "N"}})
	pd, _ := s.AuthorizeChannel("1.2", "private-encrypted-d", nil)
	for ch, want := range map[string]ChannelAuth{"private-a": pa, "presence-b": pb, "private-encrypted-d": pd} {
		if o := out[ch]; o.Status != 200 || o.Data == nil || *o.Data != want {
			t.Errorf("%s: %+v, want status 200 and %+v", ch, o, want)
		}
	}
	if pb.ChannelData == "" || pd.SharedSecret == "" {
		t.Error("presence channel_data or encrypted shared_secret missing in the batch")
	}
	if o := out["private-denied-c"]; o.Status != 403 || o.Data != nil {
		t.Errorf("denied channel: %+v", o)
	}
	if o := out["bad name"]; o.Status != 400 || o.Data != nil {
		t.Errorf("invalid channel: %+v", o)
	}
}

func TestUserHandler(t *testing.T) {
	a := newTestAuthorizer(t, nil)
	got := do(a.UserHandler(), "POST", "/pusher/user-auth", form, "socket_id=1.2&user_id=carol")
	want, _ := a.Signer().AuthenticateUser("1.2", User{ID: "carol", UserInfo: map[string]string{"name": "N"}, Watchlist: []string{"w"}})
	wb, _ := json.Marshal(want)
	if got.status != 200 || got.body != string(wb) {
		t.Fatalf("%d %s, want %s", got.status, got.body, wb)
	}
	if got := do(a.UserHandler(), "POST", "/", form, "user_id=carol"); got.status != 400 {
		t.Errorf("no socket_id: %d", got.status)
	}
	deny := newTestAuthorizer(t, func(o *Options) { o.Decide = func(*Request) Decision { return Deny() } })
	if got := do(deny.UserHandler(), "POST", "/", form, "socket_id=1.2"); got.status != 403 {
		t.Errorf("denied: %d", got.status)
	}
}

func TestJSONP(t *testing.T) {
	a := newTestAuthorizer(t, nil)
	h := a.ChannelHandler()
	cb := url.QueryEscape("Pusher.auth_callbacks['1']")
	q := "/pusher/auth?callback=" + cb + "&socket_id=1.2&channel_name=private-a"
	auth, _ := a.Signer().AuthorizeChannel("1.2", "private-a", nil)
	ab, _ := json.Marshal(auth)
	script := "Pusher.auth_callbacks['1'](" + string(ab) + ");\n"
	tests := []struct {
		name    string
		target  string
		headers []string
		status  int
	}{
		{"same-origin", q, []string{"Sec-Fetch-Site", "same-origin"}, 200},
		{"cross-site, allowed Referer", q, []string{"Sec-Fetch-Site", "cross-site", "Referer", "http://good.example:8080/page?x=1"}, 200},
		{"cross-site, allowed Origin", q, []string{"Sec-Fetch-Site", "cross-site", "Origin", "http://good.example:8080"}, 200},
		{"cross-site, other port", q, []string{"Sec-Fetch-Site", "cross-site", "Referer", "http://good.example:8081/"}, 403},
		{"cross-site, other host", q, []string{"Sec-Fetch-Site", "cross-site", "Referer", "http://evil.example:8080/"}, 403},
		{"cross-site, allowed Referer but other Origin", q, []string{"Sec-Fetch-Site", "cross-site", "Origin", "http://evil.example", "Referer", "http://good.example:8080/"}, 403},
		{"cross-site, neither", q, []string{"Sec-Fetch-Site", "cross-site"}, 403},
		{"same-site is not enough", q, []string{"Sec-Fetch-Site", "same-site", "Referer", "http://sub.example.com/"}, 403},
		{"same-site, allowed", q, []string{"Sec-Fetch-Site", "same-site", "Referer", "http://good.example:8080/"}, 200},
		{"no fetch metadata, own host", q, []string{"Referer", "http://example.com/page"}, 200},
		{"no fetch metadata, allowed", q, []string{"Referer", "http://good.example:8080/"}, 200},
		{"no fetch metadata, other host", q, []string{"Referer", "http://evil.example/"}, 403},
		{"no fetch metadata, nothing", q, nil, 403},
		{"unknown Sec-Fetch-Site", q, []string{"Sec-Fetch-Site", "whatever", "Referer", "http://good.example:8080/"}, 403},
		{"bad callback alert", "/pusher/auth?callback=" + url.QueryEscape("alert(1);//") + "&socket_id=1.2&channel_name=private-a", []string{"Sec-Fetch-Site", "same-origin"}, 400},
		{"bad callback suffix", "/pusher/auth?callback=" + url.QueryEscape("Pusher.auth_callbacks['1'];x") + "&socket_id=1.2&channel_name=private-a", []string{"Sec-Fetch-Site", "same-origin"}, 400},
		{"bad callback letters", "/pusher/auth?callback=" + url.QueryEscape("Pusher.auth_callbacks['a']") + "&socket_id=1.2&channel_name=private-a", []string{"Sec-Fetch-Site", "same-origin"}, 400},
		{"denied", "/pusher/auth?callback=" + cb + "&socket_id=1.2&channel_name=private-denied", []string{"Sec-Fetch-Site", "same-origin"}, 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := do(h, "GET", "http://example.com"+tt.target, "", "", tt.headers...)
			if got.status != tt.status {
				t.Fatalf("%d %q, want %d", got.status, got.body, tt.status)
			}
			if tt.status != 200 {
				if strings.Contains(got.body, `"auth"`) {
					t.Errorf("a refusal carries a token: %q", got.body)
				}
				return
			}
			if got.body != script {
				t.Errorf("body %q, want %q", got.body, script)
			}
			if ct := got.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/javascript") {
				t.Errorf("Content-Type %q", ct)
			}
			if got.header.Get("X-Content-Type-Options") != "nosniff" {
				t.Error("no X-Content-Type-Options: nosniff")
			}
		})
	}
	// User authentication has the same JSONP transport and checks.
	u := do(a.UserHandler(), "GET", "http://example.com/pusher/user-auth?callback="+url.QueryEscape("Pusher.auth_callbacks['2']")+"&socket_id=1.2",
		"", "", "Sec-Fetch-Site", "same-origin")
	if u.status != 200 || !strings.HasPrefix(u.body, "Pusher.auth_callbacks['2']({\"auth\":") {
		t.Errorf("user JSONP: %d %q", u.status, u.body)
	}
	if u := do(a.UserHandler(), "GET", "http://example.com/pusher/user-auth?callback="+url.QueryEscape("Pusher.auth_callbacks['2']")+"&socket_id=1.2",
		"", "", "Sec-Fetch-Site", "cross-site"); u.status != 403 {
		t.Errorf("cross-site user JSONP: %d", u.status)
	}
}

func TestCORS(t *testing.T) {
	a := newTestAuthorizer(t, nil)
	h := a.ChannelHandler()
	pre := do(h, "OPTIONS", "/pusher/auth", "", "", "Origin", "http://good.example:8080",
		"Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "x-csrf-token")
	if pre.status != 204 || pre.header.Get("Access-Control-Allow-Origin") != "http://good.example:8080" ||
		pre.header.Get("Access-Control-Allow-Credentials") != "true" ||
		!strings.Contains(pre.header.Get("Access-Control-Allow-Methods"), "POST") ||
		pre.header.Get("Access-Control-Allow-Headers") != "x-csrf-token" {
		t.Errorf("allowed preflight: %d %v", pre.status, pre.header)
	}
	bad := do(h, "OPTIONS", "/pusher/auth", "", "", "Origin", "http://evil.example", "Access-Control-Request-Method", "POST")
	if bad.status != 403 || bad.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("disallowed preflight: %d %v", bad.status, bad.header)
	}
	post := do(h, "POST", "/pusher/auth", form, "socket_id=1.2&channel_name=private-a", "Origin", "http://good.example:8080")
	if post.status != 200 || post.header.Get("Access-Control-Allow-Origin") != "http://good.example:8080" {
		t.Errorf("allowed POST: %d %v", post.status, post.header)
	}
	post = do(h, "POST", "/pusher/auth", form, "socket_id=1.2&channel_name=private-a", "Origin", "http://evil.example")
	if post.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("a disallowed origin got CORS headers: %v", post.header)
	}
	if !strings.Contains(post.header.Get("Vary"), "Origin") {
		t.Error("no Vary: Origin")
	}
	// Origin null is what sandboxed iframes, data: documents and
	// cross-origin redirects send: any site can make a browser send it, so
	// it is never allowed, whatever the Referer says (a sandboxed frame on
	// an allowed page has that page's Referer).
	for _, method := range []string{"OPTIONS", "POST"} {
		got := do(h, method, "/pusher/auth", form, "socket_id=1.2&channel_name=private-a", "Origin", "null",
			"Referer", "http://good.example:8080/page", "Access-Control-Request-Method", "POST")
		if v := got.header.Get("Access-Control-Allow-Origin"); v != "" {
			t.Errorf("%s from Origin null with an allowed Referer: Access-Control-Allow-Origin %q", method, v)
		}
	}
}

func TestCSRF(t *testing.T) {
	a := newTestAuthorizer(t, func(o *Options) { o.CSRFToken = CSRFCookie("csrf") })
	h := a.ChannelHandler()
	body := "socket_id=1.2&channel_name=private-a"
	post := func(headers ...string) int {
		r := httptest.NewRequest("POST", "/pusher/auth", strings.NewReader(body))
		r.Header.Set("Content-Type", form)
		for i := 0; i+1 < len(headers); i += 2 {
			r.Header.Set(headers[i], headers[i+1])
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	if c := post("Cookie", "csrf=t0k"); c != 403 {
		t.Errorf("no header: %d", c)
	}
	if c := post("Cookie", "csrf=t0k", "X-CSRF-Token", "other"); c != 403 {
		t.Errorf("wrong header: %d", c)
	}
	if c := post("X-CSRF-Token", ""); c != 403 {
		t.Errorf("no cookie, empty header: %d", c)
	}
	if c := post("Cookie", "csrf=t0k", "X-CSRF-Token", "t0k"); c != 200 {
		t.Errorf("matching X-CSRF-Token: %d", c)
	}
	// Laravel Echo's spelling is the same header.
	if c := post("Cookie", "csrf=t0k", "X-CSRF-TOKEN", "t0k"); c != 200 {
		t.Errorf("matching X-CSRF-TOKEN: %d", c)
	}
	// The JSONP GET cannot send headers; the origin check guards it.
	got := do(h, "GET", "/pusher/auth?callback="+url.QueryEscape("Pusher.auth_callbacks['1']")+"&"+body, "", "", "Sec-Fetch-Site", "same-origin")
	if got.status != 200 {
		t.Errorf("same-origin JSONP with CSRF on: %d", got.status)
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	for name, o := range map[string]Options{
		"no decide":    {Key: "k", Secret: "s"},
		"no secret":    {Key: "k", Decide: decideTest},
		"origin path":  {Key: "k", Secret: "s", Decide: decideTest, AllowedOrigins: []string{"http://a.example/x"}},
		"origin ftp":   {Key: "k", Secret: "s", Decide: decideTest, AllowedOrigins: []string{"ftp://a.example"}},
		"origin bare":  {Key: "k", Secret: "s", Decide: decideTest, AllowedOrigins: []string{"a.example"}},
		"short master": {Key: "k", Secret: "s", Decide: decideTest, EncryptionMasterKey: []byte("x")},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestParseOriginNormalizes(t *testing.T) {
	for in, want := range map[string]string{
		"http://App.Example:8080": "http://app.example:8080",
		"https://a.example:443":   "https://a.example",
		"http://a.example:80/":    "http://a.example",
		"http://127.0.0.1:6002":   "http://127.0.0.1:6002",
	} {
		if got, err := parseOrigin(in); err != nil || got != want {
			t.Errorf("parseOrigin(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
