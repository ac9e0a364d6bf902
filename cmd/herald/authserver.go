package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/heraldhq/herald/internal/config"
	"github.com/heraldhq/herald/internal/devauth"
)

// DefaultAuthServerAddr is where herald auth-server listens by default:
// loopback, next to Herald's own port.
const DefaultAuthServerAddr = "127.0.0.1:6002"

// listFlag is a flag that may be repeated and holds comma-separated values.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// runAuthServer is herald auth-server: the development auth endpoints for
// the configured app, on a port of their own, until ctx ends. The address
// it listens on goes to out, the warning to warn.
func runAuthServer(ctx context.Context, args []string, getenv func(string) string, out, warn io.Writer) error {
	var (
		addr, app, mk *string
		deny, origins listFlag
	)
	cfg, pos, err := config.LoadCommand("herald auth-server [--addr 127.0.0.1:6002] [--deny PREFIX] [--allowed-origins LIST] [--encryption-master-key BASE64] [flags]",
		args, getenv, func(fs *flag.FlagSet) {
			addr = fs.String("addr", DefaultAuthServerAddr, "listen address of the auth endpoints")
			app = fs.String("app", "", "id of the app to use when the config has several")
			mk = fs.String("encryption-master-key", "", "base64 of the 32-byte master key of private-encrypted channels (default: $"+config.EnvEncryptionMasterKey+")")
			fs.Var(&deny, "deny", "refuse channels starting with this prefix (repeatable, or comma-separated)")
			fs.Var(&origins, "allowed-origins", "comma-separated origins (http://host:port) allowed cross-site: JSONP and CORS")
		})
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("auth-server: unexpected argument %q", pos[0])
	}
	a, err := pickApp(cfg, *app)
	if err != nil {
		return err
	}
	key, err := masterKey(orEnv(*mk, getenv, config.EnvEncryptionMasterKey))
	if err != nil {
		return err
	}
	h, err := devauth.Handler(devauth.Options{Key: a.Key, Secret: a.Secret, JWTSecret: a.JWTSecret,
		JWTAudience: a.JWTAudience, JWTIssuer: a.JWTIssuer,
		EncryptionMasterKey: key, Deny: deny, AllowedOrigins: origins})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	host, _, err := net.SplitHostPort(*addr)
	if err != nil {
		host = *addr
	}
	srv := &http.Server{Handler: ownHostOnly(h, host), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	fmt.Fprintf(warn, "\n%s\nfor app %s (key %q); never run it where anyone else can reach it.\n\n", devauth.Warning, a.ID, a.Key)
	where := "http://" + ln.Addr().String()
	fmt.Fprintf(out, "herald auth-server listening on %s\n", ln.Addr())
	fmt.Fprintf(out, "  channel authorization %s%s, user authentication %s%s\n", where, devauth.ChannelPath, where, devauth.UserPath)
	if len(deny) > 0 {
		fmt.Fprintf(out, "  refusing channels starting with %s\n", strings.Join(deny, ", "))
	}
	if len(origins) > 0 {
		fmt.Fprintf(out, "  cross-site origins allowed: %s\n", strings.Join(origins, ", "))
	}
	fmt.Fprintf(out, "pusher-js: channelAuthorization: {endpoint: %q, params: {user_id: \"alice\"}}, userAuthentication: {endpoint: %q}\n",
		where+devauth.ChannelPath, where+devauth.UserPath)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// ownHostOnly refuses requests whose Host names neither an IP address,
// localhost, nor listenHost. The endpoints sign anything for anyone who can
// read their answers, and a page can read them through DNS rebinding: its
// own name, made to resolve to 127.0.0.1, makes the browser treat the auth
// server as the page's own origin, with Sec-Fetch-Site same-origin and no
// CORS needed. Such a request still carries the page's name as its Host,
// which no loopback-only server answers to.
func ownHostOnly(h http.Handler, listenHost string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.Host)
		if err != nil {
			host = r.Host
		}
		host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
		lower := strings.ToLower(host)
		switch {
		case net.ParseIP(host) != nil, lower == "localhost", strings.HasSuffix(lower, ".localhost"),
			listenHost != "" && strings.EqualFold(host, listenHost):
			h.ServeHTTP(w, r)
		default:
			http.Error(w, "Forbidden: the request's Host is not this server's address", http.StatusForbidden)
		}
	})
}
