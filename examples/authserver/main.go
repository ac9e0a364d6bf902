// Command authserver is a complete app backend for Herald's private and
// presence channels, built on the appauth package: a login cookie, one
// decision function, and the auth endpoints of pusher-js, the pusher-js-auth
// batch plugin and Laravel Echo. The end-to-end browser tests run it; it is
// also the example docs/backend.md walks through.
//
//	go run ./examples/authserver --app-key app-key --app-secret app-secret \
//	    --herald 127.0.0.1:6001 --static e2e/js/node_modules
//
// then open http://127.0.0.1:8080/login?user=alice.
package main

import (
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"html/template"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/heraldhq/herald/appauth"
)

// sessions are the logged-in users by session token. An example keeps them
// in memory; the bound keeps a stream of logins from growing it forever.
type sessions struct {
	mu    sync.Mutex
	users map[string]string
}

const maxSessions = 10000

func randomToken() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

func (s *sessions) login(user string) (string, error) {
	tok, err := randomToken()
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.users) >= maxSessions {
		clear(s.users)
	}
	s.users[tok] = user
	return tok, nil
}

func (s *sessions) user(tok string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[tok]
	return u, ok && tok != ""
}

// The cookies: the session (HttpOnly, never readable by scripts) and the
// CSRF token (readable by the app's own pages, which send it back as a
// header: a page of another site can neither read it nor set the header).
const (
	sessionCookie = "session"
	csrfCookie    = "csrf_token"
)

func main() {
	var (
		addr    = flag.String("addr", "127.0.0.1:8080", "listen address")
		key     = flag.String("app-key", os.Getenv("HERALD_APP_KEY"), "the Herald app's key (HERALD_APP_KEY)")
		secret  = flag.String("app-secret", os.Getenv("HERALD_APP_SECRET"), "the Herald app's secret (HERALD_APP_SECRET)")
		herald  = flag.String("herald", "127.0.0.1:6001", "host:port of Herald, for the page's pusher-js")
		static  = flag.String("static", "", "directory served at /static/ (e2e/js/node_modules: pusher-js, pusher-js-auth, laravel-echo)")
		origins = flag.String("allowed-origins", "", "comma-separated origins allowed cross-site (JSONP, CORS)")
	)
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	var allowed []string
	if *origins != "" {
		allowed = strings.Split(*origins, ",")
	}
	h, err := newApp(*key, *secret, *herald, *static, allowed)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("authserver listening on http://%s\n", ln.Addr())
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second}
	log.Fatal(srv.Serve(ln))
}

func newApp(key, secret, herald, static string, allowed []string) (http.Handler, error) {
	s := &sessions{users: map[string]string{}}

	// The one decision: who is asking, and may they have this channel?
	decide := func(r *appauth.Request, user string) appauth.Decision {
		switch {
		case user == "":
			return appauth.Deny()
		case strings.HasPrefix(r.Channel, "private-user-"):
			// A user's own channel, and nobody else's.
			if strings.TrimPrefix(r.Channel, "private-user-") != user {
				return appauth.Deny()
			}
		case strings.HasPrefix(r.Channel, "private-admin-"):
			if user != "admin" {
				return appauth.Deny()
			}
		}
		return appauth.Decision{Allow: true, UserID: user,
			UserInfo: map[string]string{"name": strings.ToUpper(user[:1]) + user[1:]}}
	}
	cookieUser := func(r *http.Request) string {
		c, err := r.Cookie(sessionCookie)
		if err != nil {
			return ""
		}
		u, _ := s.user(c.Value)
		return u
	}
	// Pages of the app's own origin: the session cookie, with a CSRF header
	// on every POST (pusher-js: X-CSRF-Token; Echo: X-CSRF-TOKEN). JSONP from
	// the allowed origins too (GET, guarded by the origin check).
	cookieAuth, err := appauth.New(appauth.Options{
		Key: key, Secret: secret, AllowedOrigins: allowed,
		CSRFToken: appauth.CSRFCookie(csrfCookie),
		Decide:    func(r *appauth.Request) appauth.Decision { return decide(r, cookieUser(r.HTTP)) },
	})
	if err != nil {
		return nil, err
	}
	// Pages of other origins (CORS for the allowed ones): the session
	// token as a bearer token, Echo's bearerToken convention. No cookie is
	// involved, so there is nothing for CSRF to forge.
	bearerAuth, err := appauth.New(appauth.Options{
		Key: key, Secret: secret, AllowedOrigins: allowed,
		Decide: func(r *appauth.Request) appauth.Decision {
			tok, _ := strings.CutPrefix(r.HTTP.Header.Get("Authorization"), "Bearer ")
			u, _ := s.user(tok)
			return decide(r, u)
		},
	})
	if err != nil {
		return nil, err
	}

	mux := http.NewServeMux()
	mux.Handle("/pusher/auth", cookieAuth.ChannelHandler())
	mux.Handle("/pusher/user-auth", cookieAuth.UserHandler())
	mux.Handle("/broadcasting/auth", cookieAuth.ChannelHandler())
	mux.Handle("/broadcasting/user-auth", cookieAuth.UserHandler())
	mux.Handle("/api/pusher/auth", bearerAuth.ChannelHandler())

	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		user := r.URL.Query().Get("user")
		if !appauth.ValidUserID(user) {
			http.Error(w, "login?user=NAME", http.StatusBadRequest)
			return
		}
		tok, err := s.login(user)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		csrf, err := randomToken()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: tok, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
		http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: csrf, Path: "/", SameSite: http.SameSiteLaxMode})
		http.Redirect(w, r, "/", http.StatusSeeOther)
	})
	// The session token for pages of other origins (bearer tokens). A real
	// app would hand it out through its own login flow.
	mux.HandleFunc("GET /token", func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(sessionCookie)
		if err != nil || cookieUser(r) == "" {
			http.Error(w, "not logged in", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		fmt.Fprint(w, c.Value)
	})
	host, port, err := net.SplitHostPort(herald)
	if err != nil {
		return nil, fmt.Errorf("--herald %q: %w", herald, err)
	}
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		csrf := ""
		if c, err := r.Cookie(csrfCookie); err == nil {
			csrf = c.Value
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		page.Execute(w, map[string]string{"Key": key, "Host": host, "Port": port, "CSRF": csrf, "User": cookieUser(r)})
	})
	if static != "" {
		mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServer(http.Dir(static))))
	}
	return mux, nil
}

var page = template.Must(template.New("page").Parse(`<!doctype html>
<html><head><meta charset="utf-8">
<meta name="csrf-token" content="{{.CSRF}}">
<title>Herald auth example</title>
<style>body{font:14px sans-serif;margin:2em} li.ok{color:#080} li.err{color:#b00}</style>
<script src="/static/pusher-js/dist/web/pusher.js"></script>
<script src="/static/pusher-js-auth/lib/pusher-auth.js"></script>
<script src="/static/laravel-echo/dist/echo.iife.js"></script>
</head><body>
<h1>Herald auth example</h1>
<p>Logged in as <b id="user">{{if .User}}{{.User}}{{else}}nobody{{end}}</b>.</p>
<ul id="log"></ul>
<script>
const herald = {key: {{.Key}}, wsHost: {{.Host}}, wsPort: Number({{.Port}})};
const csrf = document.querySelector('meta[name="csrf-token"]').content;
function show(text, ok) {
  const li = document.createElement('li');
  li.textContent = text;
  li.className = ok ? 'ok' : 'err';
  document.getElementById('log').appendChild(li);
}
// pusher-js options for Herald, plus whatever a test adds.
function connect(extra) {
  return new Pusher(herald.key, Object.assign({cluster: 'local', wsHost: herald.wsHost, wsPort: herald.wsPort,
    forceTLS: false, enabledTransports: ['ws']}, extra || {}));
}
// Resolves with the subscription's outcome: {ok, data} or {ok: false, error}.
function subscribe(pusher, name) {
  return new Promise((resolve) => {
    const ch = pusher.subscribe(name);
    ch.bind('pusher:subscription_succeeded', (data) => { show(name + ': subscribed', true); resolve({ok: true, data}); });
    ch.bind('pusher:subscription_error', (error) => { show(name + ': refused (' + (error.status || error.type) + ')', false); resolve({ok: false, error}); });
  });
}
</script>
</body></html>
`))
