package config

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/apps"
)

// env is a getenv backed by a map, so tests never read the real environment.
func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "herald.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadDevApp(t *testing.T) {
	c, err := Load(nil, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !c.DevApp || len(c.Apps) != 1 {
		t.Fatalf("DevApp=%v with %d apps, want the development app alone", c.DevApp, len(c.Apps))
	}
	a := c.Apps[0]
	if a.ID != "app-id" || a.Key != "app-key" || a.Secret != "app-secret" || !a.ClientEvents {
		t.Errorf("dev app = %+v", a)
	}
	if a.ActivityTimeout != apps.DefaultActivityTimeout || a.MaxChannelNameLength != apps.DefaultMaxChannelNameLength {
		t.Errorf("dev app not normalized: %+v", a)
	}
	// Loopback only: the development app's credentials are public.
	if c.Addr != "127.0.0.1:6001" || c.LogLevel != "info" || c.ShutdownTimeout != 5*time.Second || c.Transport != "" {
		t.Errorf("defaults: addr %q log %q shutdown %v transport %q", c.Addr, c.LogLevel, c.ShutdownTimeout, c.Transport)
	}

	// Client events of the dev app can be switched off.
	c, err = Load([]string{"--app-client-events=false"}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !c.DevApp || c.Apps[0].ClientEvents {
		t.Errorf("--app-client-events=false: %+v", c.Apps[0])
	}
	c, err = Load(nil, env(map[string]string{"HERALD_APP_CLIENT_EVENTS": "false"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Apps[0].ClientEvents {
		t.Error("HERALD_APP_CLIENT_EVENTS=false left client events on")
	}

	// The dev app's server API key is as public as its secret; its JWT
	// settings come from the single-app variables.
	if a.APIKey != "app-api-key" || a.ClientPublish || a.PusherJWTAuth || a.JWTSecret != "" || a.JWT() != nil {
		t.Errorf("dev app JWT/API settings = %+v", a)
	}
	c, err = Load([]string{"--app-client-publish", "true"}, env(map[string]string{
		"HERALD_APP_JWT_SECRET": "jwt-s", "HERALD_APP_API_KEY": "api-k", "HERALD_APP_PUSHER_JWT_AUTH": "true",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if a := c.Apps[0]; !c.DevApp || a.JWTSecret != "jwt-s" || a.APIKey != "api-k" || !a.ClientPublish || !a.PusherJWTAuth {
		t.Errorf("dev app with the single-app variables = %+v", a)
	}

	// An empty file configures nothing either.
	c, err = Load([]string{"--config", writeFile(t, "")}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !c.DevApp {
		t.Error("empty config file: no dev app")
	}
}

func TestLoadPrecedence(t *testing.T) {
	file := writeFile(t, `
addr: ":1001"
log_level: warn
transport: goroutine
`)
	allEnv := map[string]string{
		"HERALD_CONFIG":    file,
		"HERALD_ADDR":      ":1002",
		"HERALD_LOG_LEVEL": "error",
		"HERALD_TRANSPORT": "epoll",
	}
	only := func(keys ...string) map[string]string {
		m := map[string]string{}
		for _, k := range keys {
			m[k] = allEnv[k]
		}
		return m
	}
	flags := []string{"--addr", ":1003", "--log-level", "debug", "--transport", "goroutine"}

	tests := []struct {
		name                      string
		args                      []string
		env                       map[string]string
		addr, logLevel, transport string
	}{
		{"file alone", []string{"--config", file}, nil, ":1001", "warn", "goroutine"},
		{"file named by HERALD_CONFIG", nil, only("HERALD_CONFIG"), ":1001", "warn", "goroutine"},
		{"env beats file", nil, allEnv, ":1002", "error", "epoll"},
		{"flags beat env and file", flags, allEnv, ":1003", "debug", "goroutine"},
		{"flags beat file", append([]string{"--config", file}, flags...), nil, ":1003", "debug", "goroutine"},
		{"one flag, the rest from env", []string{"--addr=:1003"}, allEnv, ":1003", "error", "epoll"},
		{"env without file", nil, only("HERALD_ADDR", "HERALD_LOG_LEVEL", "HERALD_TRANSPORT"), ":1002", "error", "epoll"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(tt.args, env(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			if c.Addr != tt.addr || c.LogLevel != tt.logLevel || c.Transport != tt.transport {
				t.Errorf("got addr %q log %q transport %q, want %q %q %q", c.Addr, c.LogLevel, c.Transport, tt.addr, tt.logLevel, tt.transport)
			}
		})
	}
}

func TestLoadConfigFlagBeatsEnv(t *testing.T) {
	fromFlag := writeFile(t, "addr: \":2001\"\n")
	fromEnv := writeFile(t, "addr: \":2002\"\n")
	c, err := Load([]string{"--config", fromFlag}, env(map[string]string{"HERALD_CONFIG": fromEnv}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != ":2001" {
		t.Errorf("addr %q: --config did not beat HERALD_CONFIG", c.Addr)
	}
}

func TestLoadFileApps(t *testing.T) {
	file := writeFile(t, `
addr: ":7000"
pong_timeout: 10s
max_connections: 5000
max_queue_bytes: 2097152
max_message_bytes: 32768
shutdown_timeout: 2s
apps:
  - id: "1001"
    key: key-1
    secret: secret-1
    client_events: true
    activity_timeout: 60s
    max_presence_members: 50
    enabled: false
  - id: "1002"
    key: key-2
    secret: secret-2
`)
	c, err := Load([]string{"--config", file}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.DevApp || len(c.Apps) != 2 {
		t.Fatalf("DevApp=%v apps=%+v", c.DevApp, c.Apps)
	}
	if c.PongTimeout != 10*time.Second || c.MaxConnections != 5000 || c.MaxQueueBytes != 2<<20 ||
		c.MaxMessageBytes != 32768 || c.ShutdownTimeout != 2*time.Second {
		t.Errorf("node settings = %+v", c)
	}
	a, b := c.Apps[0], c.Apps[1]
	if a.ID != "1001" || a.Key != "key-1" || a.Secret != "secret-1" || !a.ClientEvents ||
		a.ActivityTimeout != time.Minute || a.MaxPresenceMembers != 50 || a.IsEnabled() {
		t.Errorf("app 1001 = %+v", a)
	}
	if a.ClientEventRate != apps.DefaultClientEventRate {
		t.Errorf("app 1001 not normalized: %+v", a)
	}
	if b.ClientEvents || !b.IsEnabled() || b.ActivityTimeout != apps.DefaultActivityTimeout {
		t.Errorf("app 1002 = %+v", b)
	}

	// A single app from the environment is served beside the file's.
	c, err = Load([]string{"--config", file}, env(map[string]string{
		"HERALD_APP_ID": "1003", "HERALD_APP_KEY": "key-3", "HERALD_APP_SECRET": "secret-3", "HERALD_APP_CLIENT_EVENTS": "true",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Apps) != 3 || c.Apps[2].ID != "1003" || c.Apps[2].Key != "key-3" || !c.Apps[2].ClientEvents || c.DevApp {
		t.Errorf("apps = %+v", c.Apps)
	}

	// Without that app, the single-app settings would do nothing: refused.
	for _, v := range []struct{ env, key string }{
		{"HERALD_APP_JWT_SECRET", "jwt_secret"}, {"HERALD_APP_JWT_PUBLIC_KEY", "jwt_public_key"},
		{"HERALD_APP_API_KEY", "api_key"}, {"HERALD_APP_CLIENT_PUBLISH", "client_publish"},
	} {
		_, err = Load([]string{"--config", file}, env(map[string]string{v.env: "x"}))
		if err == nil || !strings.Contains(err.Error(), v.env) || !strings.Contains(err.Error(), "set "+v.key+" on the file's apps") {
			t.Errorf("%s with only the file's apps: %v", v.env, err)
		}
	}
	_, err = Load([]string{"--config", file, "--app-client-events", "true"}, env(nil))
	if err == nil || !strings.Contains(err.Error(), "set client_events on the file's apps") {
		t.Errorf("--app-client-events with only the file's apps: %v", err)
	}
}

func TestLoadSingleApp(t *testing.T) {
	e := map[string]string{"HERALD_APP_ID": "1", "HERALD_APP_KEY": "env-key", "HERALD_APP_SECRET": "env-secret"}
	c, err := Load(nil, env(e))
	if err != nil {
		t.Fatal(err)
	}
	if c.DevApp || len(c.Apps) != 1 || c.Apps[0].Key != "env-key" || c.Apps[0].ClientEvents {
		t.Fatalf("apps = %+v (dev %v)", c.Apps, c.DevApp)
	}
	// The JWT and server API settings of the single app.
	key := writeRSAPublicKey(t)
	e2 := map[string]string{"HERALD_APP_JWT_SECRET": "jwt-secret", "HERALD_APP_JWT_PUBLIC_KEY": key, "HERALD_APP_API_KEY": "api-key", "HERALD_APP_CLIENT_PUBLISH": "true", "HERALD_APP_PUSHER_JWT_AUTH": "true"}
	for k, v := range e {
		e2[k] = v
	}
	c, err = Load(nil, env(e2))
	if err != nil {
		t.Fatal(err)
	}
	if a := c.Apps[0]; a.JWTSecret != "jwt-secret" || a.JWTPublicKey != key || a.APIKey != "api-key" || !a.ClientPublish || !a.PusherJWTAuth {
		t.Errorf("app with JWT settings = %+v", a)
	}
	c, err = Load([]string{"--app-api-key", "flag-api", "--app-client-publish", "false", "--app-jwt-secret", "flag-jwt"}, env(e2))
	if err != nil {
		t.Fatal(err)
	}
	if a := c.Apps[0]; a.APIKey != "flag-api" || a.ClientPublish || a.JWTSecret != "flag-jwt" {
		t.Errorf("flags over JWT variables: %+v", a)
	}

	// Each flag beats its variable.
	c, err = Load([]string{"--app-id", "2", "--app-secret", "flag-secret", "--app-client-events", "true"}, env(e))
	if err != nil {
		t.Fatal(err)
	}
	a := c.Apps[0]
	if a.ID != "2" || a.Key != "env-key" || a.Secret != "flag-secret" || !a.ClientEvents {
		t.Errorf("app = %+v", a)
	}
}

func writeRSAPublicKey(t *testing.T) string {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "jwt.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadFileJWTKeys(t *testing.T) {
	key := writeRSAPublicKey(t)
	c, err := Load([]string{"--config", writeFile(t, `apps:
  - id: "1"
    key: k
    secret: s
    jwt_secret: js
    jwt_public_key: `+key+`
    jwt_audience: aud
    jwt_issuer: iss
    api_key: ak
    client_publish: true
    pusher_jwt_auth: true
`)}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	a := c.Apps[0]
	if a.JWTSecret != "js" || a.JWTPublicKey != key || a.JWTAudience != "aud" || a.JWTIssuer != "iss" || a.APIKey != "ak" || !a.ClientPublish || !a.PusherJWTAuth {
		t.Errorf("app = %+v", a)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		file string // written to a temporary file and passed with --config
		want string // substring of the error
	}{
		{name: "unknown top-level key", file: "adr: \":1\"\n", want: "adr"},
		{name: "unknown app key", file: "apps:\n  - id: \"1\"\n    key: k\n    secret: s\n    client_event: true\n", want: "client_event"},
		{name: "wrong type", file: "max_connections: lots\n", want: "lots"},
		{name: "duration as a bare number", file: "apps:\n  - {id: \"1\", key: k, secret: s, activity_timeout: 60}\n", want: "into time.Duration"},
		{name: "not YAML", file: "addr: [\n", want: "config file"},
		{name: "two documents", file: "apps:\n  - {id: \"1\", key: a, secret: s}\n---\napps:\n  - {id: \"2\", key: b, secret: t}\n", want: "more than one YAML document"},
		{name: "a document after an empty one", file: "addr: \":7000\"\n---\n---\napps:\n  - {id: \"2\", key: b, secret: t}\n", want: "more than one YAML document"},
		{name: "empty document then apps", file: "---\n---\napps:\n  - {id: \"2\", key: b, secret: t}\n", want: "more than one YAML document"},
		{name: "negative limit", file: "max_connections: -1\n", want: "must not be negative"},
		{name: "negative timeout", file: "pong_timeout: -1s\n", want: "must not be negative"},
		{name: "bad transport", file: "transport: kqueue\n", want: `transport "kqueue"`},
		{name: "bad transport flag", args: []string{"--transport", "threads"}, want: `transport "threads"`},
		{name: "bad log level", env: map[string]string{"HERALD_LOG_LEVEL": "loud"}, want: `log_level "loud"`},
		{name: "duplicate app id", file: "apps:\n  - {id: \"1\", key: a, secret: s}\n  - {id: \"1\", key: b, secret: s}\n", want: `app id "1" defined twice`},
		{name: "duplicate app key", file: "apps:\n  - {id: \"1\", key: a, secret: s}\n  - {id: \"2\", key: a, secret: s}\n", want: `app key "a" defined twice`},
		{name: "env app clashes with file app", file: "apps:\n  - {id: \"1\", key: a, secret: s}\n",
			env: map[string]string{"HERALD_APP_ID": "1", "HERALD_APP_KEY": "b", "HERALD_APP_SECRET": "t"}, want: `app id "1" defined twice`},
		{name: "app without secret", file: "apps:\n  - {id: \"1\", key: a}\n", want: "secret is empty"},
		{name: "activity timeout too short", file: "apps:\n  - {id: \"1\", key: a, secret: s, activity_timeout: 500ms}\n", want: "activity_timeout must be at least 1s"},
		{name: "partial single app", env: map[string]string{"HERALD_APP_ID": "1", "HERALD_APP_KEY": "k"}, want: "must be set together"},
		{name: "partial single app by flag", args: []string{"--app-secret", "s"}, want: "must be set together"},
		{name: "bad client events value", env: map[string]string{"HERALD_APP_ID": "1", "HERALD_APP_KEY": "k", "HERALD_APP_SECRET": "s", "HERALD_APP_CLIENT_EVENTS": "sometimes"},
			want: `"sometimes" is not true or false`},
		{name: "bad client events value for the dev app", args: []string{"--app-client-events", "maybe"}, want: `"maybe" is not true or false`},
		{name: "bad client publish value", env: map[string]string{"HERALD_APP_CLIENT_PUBLISH": "often"}, want: `HERALD_APP_CLIENT_PUBLISH: "often" is not true or false`},
		{name: "bad pusher jwt auth value", args: []string{"--app-pusher-jwt-auth", "y"}, want: `HERALD_APP_PUSHER_JWT_AUTH: "y" is not true or false`},
		{name: "jwt public key unreadable", env: map[string]string{"HERALD_APP_JWT_PUBLIC_KEY": "/nonexistent/key.pem"}, want: "app app-id: jwt_public_key: open /nonexistent/key.pem"},
		{name: "jwt public key not PEM", file: "apps:\n  - {id: \"7\", key: a, secret: s, jwt_public_key: /dev/null}\n", want: "app 7: jwt_public_key: /dev/null is not a PEM file"},
		{name: "unknown jwt key", file: "apps:\n  - {id: \"1\", key: a, secret: s, jwt_key: x}\n", want: "jwt_key"},
		{name: "missing file", args: []string{"--config", "/nonexistent/herald.yaml"}, want: "config file"},
		{name: "missing file from env", env: map[string]string{"HERALD_CONFIG": "/nonexistent/herald.yaml"}, want: "config file"},
		{name: "unknown flag", args: []string{"--port", "1"}, want: "flag provided but not defined: -port"},
		{name: "positional argument", args: []string{"serve"}, want: `unexpected argument "serve"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if tt.file != "" {
				args = append([]string{"--config", writeFile(t, tt.file)}, args...)
			}
			c, err := Load(args, env(tt.env))
			if err == nil {
				t.Fatalf("Load accepted it: %+v", c)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Load error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestLoadHelp(t *testing.T) {
	_, err := Load([]string{"--help"}, env(nil))
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v, want flag.ErrHelp", err)
	}
	for _, name := range []string{"-addr", "-config", "-app-id", "-app-key", "-app-secret", "-app-client-events", "-log-level", "-transport",
		"-version", "-debug-addr", "-metrics-addr", "-shutdown-delay", "HERALD_ADDR", "HERALD_METRICS_ADDR", "HERALD_SHUTDOWN_DELAY",
		"-redis-url", "HERALD_REDIS_URL", "-node-id", "HERALD_NODE_ID"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("usage does not mention %s:\n%s", name, err)
		}
	}
}

func TestLoadVersion(t *testing.T) {
	// --version reads nothing else: a missing file or a bad setting in the
	// environment does not keep a version check from answering.
	for _, args := range [][]string{{"--version"}, {"-version"}, {"--addr", ":1", "--version"}, {"--version", "extra"}} {
		_, err := Load(args, env(map[string]string{"HERALD_CONFIG": "/nonexistent/herald.yaml", "HERALD_LOG_LEVEL": "loud"}))
		if !errors.Is(err, ErrVersion) {
			t.Errorf("Load(%q) = %v, want ErrVersion", args, err)
		}
	}
	// Without it nothing changes: the environment still configures the node.
	c, err := Load(nil, env(map[string]string{"HERALD_ADDR": ":7"}))
	if err != nil || c.Addr != ":7" {
		t.Errorf("Load without --version: %v, addr %q", err, c.Addr)
	}
	if _, err := Load([]string{"--version=false"}, env(nil)); err != nil {
		t.Errorf("--version=false: %v", err)
	}
}

func TestValidate(t *testing.T) {
	good := func() Config {
		c := Config{Addr: ":1", LogLevel: "info", Apps: []apps.App{{ID: "1", Key: "k", Secret: "s"}}}
		c.applyDefaults()
		return c
	}
	tests := []struct {
		name   string
		change func(*Config)
		want   string // "" for valid
	}{
		{"valid", func(*Config) {}, ""},
		{"epoll", func(c *Config) { c.Transport = "epoll" }, ""},
		{"goroutine", func(c *Config) { c.Transport = "goroutine" }, ""},
		{"log level in capitals", func(c *Config) { c.LogLevel = "WARN" }, ""},
		{"negative pong timeout", func(c *Config) { c.PongTimeout = -1 }, "must not be negative"},
		{"negative max connections", func(c *Config) { c.MaxConnections = -1 }, "must not be negative"},
		{"negative queue bytes", func(c *Config) { c.MaxQueueBytes = -1 }, "must not be negative"},
		{"negative message bytes", func(c *Config) { c.MaxMessageBytes = -1 }, "must not be negative"},
		{"negative shutdown timeout", func(c *Config) { c.ShutdownTimeout = -1 }, "must not be negative"},
		{"negative shutdown delay", func(c *Config) { c.ShutdownDelay = -1 }, "shutdown_delay must not be negative"},
		{"shutdown delay", func(c *Config) { c.ShutdownDelay = 5 * time.Second }, ""},
		{"metrics on their own address", func(c *Config) { c.MetricsAddr = "127.0.0.1:9601" }, ""},
		{"metrics on the main address", func(c *Config) { c.MetricsAddr = c.Addr }, "metrics_addr"},
		{"unknown transport", func(c *Config) { c.Transport = "io_uring" }, "transport"},
		{"empty log level", func(c *Config) { c.LogLevel = "" }, "log_level"},
		{"no apps", func(c *Config) { c.Apps = nil }, "no apps configured"},
		{"bad app", func(c *Config) { c.Apps[0].Secret = "" }, "secret is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good()
			tt.change(&c)
			err := c.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Validate = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestLoadDebugAddr(t *testing.T) {
	env := map[string]string{"HERALD_DEBUG_ADDR": "127.0.0.1:6060"}
	c, err := Load(nil, func(k string) string { return env[k] })
	if err != nil || c.DebugAddr != "127.0.0.1:6060" {
		t.Fatalf("from env: %q, %v", c.DebugAddr, err)
	}
	c, err = Load([]string{"--debug-addr", "127.0.0.1:7070"}, func(k string) string { return env[k] })
	if err != nil || c.DebugAddr != "127.0.0.1:7070" {
		t.Fatalf("flag over env: %q, %v", c.DebugAddr, err)
	}
	c, err = Load(nil, func(string) string { return "" })
	if err != nil || c.DebugAddr != "" {
		t.Fatalf("default: %q, %v", c.DebugAddr, err)
	}
}

func TestLoadMetricsAddr(t *testing.T) {
	env := map[string]string{"HERALD_METRICS_ADDR": "127.0.0.1:9601"}
	c, err := Load(nil, func(k string) string { return env[k] })
	if err != nil || c.MetricsAddr != "127.0.0.1:9601" {
		t.Fatalf("from env: %q, %v", c.MetricsAddr, err)
	}
	c, err = Load([]string{"--metrics-addr", "127.0.0.1:9602"}, func(k string) string { return env[k] })
	if err != nil || c.MetricsAddr != "127.0.0.1:9602" {
		t.Fatalf("flag over env: %q, %v", c.MetricsAddr, err)
	}
	c, err = Load([]string{"--config", writeFile(t, "metrics_addr: \"10.0.0.1:9603\"\n")}, func(string) string { return "" })
	if err != nil || c.MetricsAddr != "10.0.0.1:9603" {
		t.Fatalf("from the file: %q, %v", c.MetricsAddr, err)
	}
	c, err = Load([]string{"--config", writeFile(t, "metrics_addr: \"10.0.0.1:9603\"\n")}, func(k string) string { return env[k] })
	if err != nil || c.MetricsAddr != "127.0.0.1:9601" {
		t.Fatalf("env over the file: %q, %v", c.MetricsAddr, err)
	}
	c, err = Load(nil, func(string) string { return "" })
	if err != nil || c.MetricsAddr != "" {
		t.Fatalf("default: %q, %v", c.MetricsAddr, err)
	}
	_, err = Load([]string{"--addr", ":7000", "--metrics-addr", ":7000"}, func(string) string { return "" })
	if err == nil || !strings.Contains(err.Error(), "metrics_addr") {
		t.Fatalf("metrics on the main address: %v", err)
	}
}

func TestLoadShutdownDelay(t *testing.T) {
	c, err := Load(nil, env(nil))
	if err != nil || c.ShutdownDelay != 0 {
		t.Fatalf("default: %v, %v", c.ShutdownDelay, err)
	}
	file := writeFile(t, "shutdown_delay: 15s\n")
	c, err = Load([]string{"--config", file}, env(nil))
	if err != nil || c.ShutdownDelay != 15*time.Second {
		t.Fatalf("from the file: %v, %v", c.ShutdownDelay, err)
	}
	e := map[string]string{"HERALD_CONFIG": file, "HERALD_SHUTDOWN_DELAY": "5s"}
	c, err = Load(nil, env(e))
	if err != nil || c.ShutdownDelay != 5*time.Second {
		t.Fatalf("env over the file: %v, %v", c.ShutdownDelay, err)
	}
	c, err = Load([]string{"--shutdown-delay", "1m30s"}, env(e))
	if err != nil || c.ShutdownDelay != 90*time.Second {
		t.Fatalf("flag over env: %v, %v", c.ShutdownDelay, err)
	}
	// "0s" is a value, not an unset flag: it beats the variable.
	c, err = Load([]string{"--shutdown-delay", "0s"}, env(e))
	if err != nil || c.ShutdownDelay != 0 {
		t.Fatalf("flag 0s over env: %v, %v", c.ShutdownDelay, err)
	}
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"bare number from env", nil, map[string]string{"HERALD_SHUTDOWN_DELAY": "5"}, `"5" is not a duration`},
		{"word from the flag", []string{"--shutdown-delay", "soon"}, nil, `"soon" is not a duration`},
		{"negative from the flag", []string{"--shutdown-delay", "-1s"}, nil, "shutdown_delay must not be negative"},
		{"negative in the file", []string{"--config", writeFile(t, "shutdown_delay: -1s\n")}, nil, "shutdown_delay must not be negative"},
		{"bare number in the file", []string{"--config", writeFile(t, "shutdown_delay: 5\n")}, nil, "into time.Duration"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(tc.args, env(tc.env))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestHTTPSettings(t *testing.T) {
	c, err := Load(nil, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPHeaderTimeout != 5*time.Second || c.HTTPBodyTimeout != 10*time.Second || c.HTTPIdleTimeout != 60*time.Second ||
		c.HTTPWriteTimeout != 10*time.Second || c.MaxPendingConnections != 4096 {
		t.Errorf("defaults: header %v body %v idle %v write %v pending %d", c.HTTPHeaderTimeout, c.HTTPBodyTimeout,
			c.HTTPIdleTimeout, c.HTTPWriteTimeout, c.MaxPendingConnections)
	}
	if d := (Config{}).WithHTTPDefaults(); d.HTTPHeaderTimeout != c.HTTPHeaderTimeout || d.HTTPBodyTimeout != c.HTTPBodyTimeout ||
		d.HTTPIdleTimeout != c.HTTPIdleTimeout || d.HTTPWriteTimeout != c.HTTPWriteTimeout || d.MaxPendingConnections != c.MaxPendingConnections {
		t.Errorf("WithHTTPDefaults differs from Load's defaults: %+v", d)
	}

	c, err = Load([]string{"--config", writeFile(t, `
http_header_timeout: 2s
http_body_timeout: 3s
http_idle_timeout: 4m
http_write_timeout: 500ms
max_pending_connections: 100
`)}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPHeaderTimeout != 2*time.Second || c.HTTPBodyTimeout != 3*time.Second || c.HTTPIdleTimeout != 4*time.Minute ||
		c.HTTPWriteTimeout != 500*time.Millisecond || c.MaxPendingConnections != 100 {
		t.Errorf("from the file: header %v body %v idle %v write %v pending %d", c.HTTPHeaderTimeout, c.HTTPBodyTimeout,
			c.HTTPIdleTimeout, c.HTTPWriteTimeout, c.MaxPendingConnections)
	}

	for _, key := range []string{"http_header_timeout: -1s", "http_body_timeout: -1s", "http_idle_timeout: -1s", "http_write_timeout: -1ns", "max_pending_connections: -1"} {
		_, err := Load([]string{"--config", writeFile(t, key+"\n")}, env(nil))
		name, _, _ := strings.Cut(key, ":")
		if err == nil || !strings.Contains(err.Error(), name+" must not be negative") {
			t.Errorf("%s: %v, want an error naming %s", key, err, name)
		}
	}
}

// The development app listens on loopback unless told otherwise; an
// address given, or a configured app, keeps the usual rules.
func TestDevAppAddr(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		env  map[string]string
		addr string
	}{
		{"dev app, nothing set", nil, nil, "127.0.0.1:6001"},
		{"dev app, --addr", []string{"--addr", ":6001"}, nil, ":6001"},
		{"dev app, HERALD_ADDR", nil, map[string]string{"HERALD_ADDR": "0.0.0.0:7000"}, "0.0.0.0:7000"},
		{"configured app", nil, map[string]string{"HERALD_APP_ID": "1", "HERALD_APP_KEY": "k", "HERALD_APP_SECRET": "s"}, ":6001"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(tt.args, env(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			if c.Addr != tt.addr {
				t.Errorf("addr %q, want %q", c.Addr, tt.addr)
			}
		})
	}
}

func TestLoadCommand(t *testing.T) {
	var socket *string
	c, pos, err := LoadCommand("herald token check <token>", []string{"--app-key", "k", "tok", "--socket-id", "1.2", "--app-id", "1", "--app-secret=s", "more"},
		env(nil), func(fs *flag.FlagSet) { socket = fs.String("socket-id", "", "") })
	if err != nil {
		t.Fatal(err)
	}
	if *socket != "1.2" || len(pos) != 2 || pos[0] != "tok" || pos[1] != "more" {
		t.Errorf("socket %q positional %q", *socket, pos)
	}
	if c.DevApp || c.Apps[0].Key != "k" || c.Apps[0].Secret != "s" {
		t.Errorf("apps %+v", c.Apps)
	}
	_, _, err = LoadCommand("herald token x", []string{"--help"}, env(nil), nil)
	if !errors.Is(err, flag.ErrHelp) || !strings.Contains(err.Error(), "Usage: herald token x") {
		t.Errorf("--help: %v", err)
	}
	if _, _, err = LoadCommand("herald token x", []string{"--nope"}, env(nil), nil); err == nil {
		t.Error("an unknown flag was accepted")
	}
}

// A subcommand's flag of a setting's name is the subcommand's: herald
// auth-server's --addr is its own address, not Herald's.
func TestLoadCommandOwnFlagWins(t *testing.T) {
	var addr *string
	c, _, err := LoadCommand("herald auth-server", []string{"--addr", "127.0.0.1:6002"}, env(map[string]string{"HERALD_ADDR": ":7000"}),
		func(fs *flag.FlagSet) { addr = fs.String("addr", "", "") })
	if err != nil {
		t.Fatal(err)
	}
	if *addr != "127.0.0.1:6002" || c.Addr != ":7000" {
		t.Errorf("subcommand addr %q, config addr %q", *addr, c.Addr)
	}
}
