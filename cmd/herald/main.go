// Command herald runs a Herald node: a Pusher Channels compatible realtime
// server. With no configuration it serves a development app in memory.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/heraldhq/herald/internal/config"
	"github.com/heraldhq/herald/internal/devauth"
	"github.com/heraldhq/herald/internal/server"
)

func main() {
	if err := run(); err != nil {
		if errors.Is(err, config.ErrVersion) {
			fmt.Println("herald " + buildVersion())
			os.Exit(0)
		}
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, strings.TrimPrefix(err.Error(), flag.ErrHelp.Error()+"\n"))
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "herald:", err)
		os.Exit(1)
	}
}

func run() error {
	// Subcommands come first; anything else is the server's flags, as
	// before there were subcommands.
	if len(os.Args) > 1 && (os.Args[1] == "token" || os.Args[1] == "auth-server") {
		// A subcommand's output is on stdout; its warnings go beside it.
		warnUnknownEnv(slog.New(slog.NewTextHandler(os.Stderr, nil)), os.Environ())
	}
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "token":
			return runToken(os.Args[2:], os.Getenv, os.Stdout)
		case "auth-server":
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runAuthServer(ctx, os.Args[2:], os.Getenv, os.Stdout, os.Stderr)
		}
	}
	cfg, err := config.Load(os.Args[1:], os.Getenv)
	if err != nil {
		return err
	}
	var level slog.Level
	level.UnmarshalText([]byte(cfg.LogLevel))
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	warnUnknownEnv(log, os.Environ())

	cfg.Version, cfg.Commit = version, buildCommit()
	srv, err := server.New(cfg, log)
	if err != nil {
		return err
	}
	ln, err := srv.Listen()
	if err != nil {
		return err
	}
	// Signals are caught before the banner: whoever reads it (a supervisor,
	// a test) may stop the node at once, and that must be a clean shutdown.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	printBanner(cfg, ln.Addr().String(), srv.NodeID())
	return srv.Serve(ctx, ln)
}

// warnUnknownEnv logs each HERALD_* variable of environ that is no
// setting: a misspelt one, say HERALD_APP_SECRT, would otherwise be
// ignored without a word, and the node serve the development app. Only
// the name is logged, never the value, which may be a secret.
func warnUnknownEnv(log *slog.Logger, environ []string) {
	for _, v := range config.UnknownEnv(environ) {
		attrs := []any{"name", v.Name}
		if v.Suggest != "" {
			attrs = append(attrs, "did_you_mean", v.Suggest)
		}
		log.Warn("ignoring an environment variable that is not a Herald setting", attrs...)
	}
}

// printBanner tells a developer how to connect. Secrets are printed only for
// the built-in development app, whose credentials are public anyway.
func printBanner(cfg config.Config, addr, nodeID string) {
	host, port := addr, ""
	if i := strings.LastIndex(addr, ":"); i >= 0 {
		host, port = addr[:i], addr[i+1:]
	}
	if host == "" || host == "::" || host == "[::]" || host == "0.0.0.0" {
		host = "127.0.0.1"
	}
	fmt.Printf("Herald %s listening on %s\n", buildVersion(), addr)
	if nodeID != "" {
		// The password is masked: a banner ends up in logs.
		fmt.Printf("  cluster node %s, Redis %s\n", nodeID, cfg.Redis.Addr())
	}
	for _, a := range cfg.Apps {
		fmt.Printf("  app %s: ws://%s:%s/app/%s   REST http://%s:%s/apps/%s\n", a.ID, host, port, a.Key, host, port, a.ID)
		for _, w := range a.Webhooks {
			// Scheme and host only: a webhook URL's path or query may
			// carry a token, and a banner ends up in logs.
			if u, err := url.Parse(w.URL); err == nil {
				fmt.Printf("    webhooks to %s://%s\n", u.Scheme, u.Host)
			}
		}
	}
	if cfg.DevApp {
		api := ""
		if cfg.Apps[0].APIKey == config.DevAppAPIKey {
			// Only the public default: a key set by HERALD_APP_API_KEY
			// is a secret, and a banner ends up in logs.
			api = fmt.Sprintf(", server API key %q", config.DevAppAPIKey)
		}
		fmt.Printf("\nWARNING: serving the built-in development app (id %q, key %q, secret %q%s).\n", config.DevAppID, config.DevAppKey, config.DevAppSecret, api)
		fmt.Println("These credentials are public: set HERALD_APP_ID, HERALD_APP_KEY and HERALD_APP_SECRET, or HERALD_CONFIG, for anything but local development.")
		base := "http://" + net.JoinHostPort(host, port)
		fmt.Printf("\nWARNING: %s%s and %s%s authorize EVERYONE for every private and presence channel (development only).\n",
			base, devauth.ChannelPath, base, devauth.UserPath)
		fmt.Printf("\npusher-js: new Pusher(%q, {cluster: \"local\", wsHost: %q, wsPort: %s, forceTLS: false, enabledTransports: [\"ws\"],\n"+
			"  channelAuthorization: {endpoint: %q}, userAuthentication: {endpoint: %q}})\n",
			config.DevAppKey, host, port, base+devauth.ChannelPath, base+devauth.UserPath)
	}
}
