// Package config is the one place that reads Herald's settings: command-line
// flags, HERALD_* environment variables and an optional YAML file, in that
// order of precedence. Load returns a validated Config or an error that says
// which setting is wrong.
package config

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/heraldhq/herald/internal/apps"
)

// Defaults.
const (
	DefaultAddr = ":6001"
	// DefaultDevAddr is the listen address of the development app when
	// none is given: loopback only, since its credentials are public and
	// its auth endpoints authorize everyone.
	DefaultDevAddr         = "127.0.0.1:6001"
	DefaultShutdownTimeout = 5 * time.Second

	DevAppID     = "app-id"
	DevAppKey    = "app-key"
	DevAppSecret = "app-secret"
	// DevAppAPIKey is the development app's server API key, as public as
	// its secret.
	DevAppAPIKey = "app-api-key"
)

// Defaults of the HTTP listener, which serves the REST API and accepts
// WebSocket connections.
const (
	// DefaultHTTPHeaderTimeout bounds the time a client has to send a
	// request head, from its first byte (WebSocket upgrades included).
	DefaultHTTPHeaderTimeout = 5 * time.Second
	// DefaultHTTPBodyTimeout bounds the time a REST request's body has to
	// arrive once its head has.
	DefaultHTTPBodyTimeout = 10 * time.Second
	// DefaultHTTPIdleTimeout closes a REST keep-alive connection left
	// unused this long.
	DefaultHTTPIdleTimeout = 60 * time.Second
	// DefaultHTTPWriteTimeout bounds the time from a REST request's head to
	// the end of its response: a client that does not read its answer
	// holds a connection no longer than this.
	DefaultHTTPWriteTimeout = 10 * time.Second
	// DefaultMaxPendingConnections bounds connections accepted that are
	// neither a WebSocket yet nor have sent a correctly signed REST request.
	// A legitimate client is pending only while its first request head
	// arrives and is checked, usually a single packet, so a node rarely has
	// more than a few dozen; 4096 still leaves room for a reconnect storm
	// over slow links (10 000 clients a second whose heads take 300 ms is
	// 3 000), while an attacker who opens connections and stalls them holds
	// at most this many descriptors, leaving the rest of the open-file
	// limit to established clients.
	DefaultMaxPendingConnections = 4096
)

// ErrVersion is returned by Load for --version: the caller prints the
// version and exits instead of starting a node.
var ErrVersion = errors.New("version requested")

// Config is everything a Herald node needs to start.
type Config struct {
	// Addr is the listen address for WebSocket and REST traffic.
	Addr string `yaml:"addr"`
	// PongTimeout is how long a pinged client has to answer (default 30s).
	PongTimeout time.Duration `yaml:"pong_timeout"`
	// MaxConnections caps the node's connections over all apps (0: no cap).
	MaxConnections int `yaml:"max_connections"`
	// MaxQueueBytes bounds the bytes waiting to be written to one client
	// (default 1 MiB); a client that falls further behind is disconnected.
	MaxQueueBytes int `yaml:"max_queue_bytes"`
	// MaxMessageBytes bounds one client WebSocket message (default 64 KiB).
	MaxMessageBytes int `yaml:"max_message_bytes"`
	// Transport is "epoll" (default on Linux: no goroutine or buffer per idle
	// connection) or "goroutine" (a reader and a writer goroutine each).
	Transport string `yaml:"transport"`
	// DebugAddr, when set, serves Go's profiler (/debug/pprof/) on a
	// listener of its own. Bind it to loopback: profiles reveal internals.
	DebugAddr string `yaml:"debug_addr"`
	// MetricsAddr, when set, serves the Prometheus metrics (/metrics) on a
	// listener of its own instead of on Addr. Metrics name every app id:
	// keep the listener off the public network.
	MetricsAddr string `yaml:"metrics_addr"`
	// HTTPHeaderTimeout bounds how long a client may take to send a request
	// head (default 5s); a slower one is disconnected.
	HTTPHeaderTimeout time.Duration `yaml:"http_header_timeout"`
	// HTTPBodyTimeout bounds how long a REST request body may take to
	// arrive after its head (default 10s); a slower one is answered 408 and
	// its connection closed.
	HTTPBodyTimeout time.Duration `yaml:"http_body_timeout"`
	// HTTPIdleTimeout closes REST keep-alive connections idle this long
	// (default 60s).
	HTTPIdleTimeout time.Duration `yaml:"http_idle_timeout"`
	// HTTPWriteTimeout bounds the time from the end of a REST request's
	// head to the end of its response (default 10s). WebSocket connections
	// are not subject to it, nor to the other HTTP timeouts, once upgraded.
	HTTPWriteTimeout time.Duration `yaml:"http_write_timeout"`
	// MaxPendingConnections bounds the connections accepted that are
	// neither a WebSocket connection yet nor have sent a correctly signed
	// REST request (default 4096). Connections over it are closed at once.
	MaxPendingConnections int `yaml:"max_pending_connections"`
	// ShutdownDelay is how long the node keeps serving after SIGTERM,
	// with /readyz answering 503, before it starts closing clients
	// (default 0: at once). It gives a load balancer time to stop sending
	// new connections; ShutdownTimeout then runs from its end.
	ShutdownDelay time.Duration `yaml:"shutdown_delay"`
	// ShutdownTimeout bounds the graceful shutdown.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `yaml:"log_level"`
	// Apps are the tenants served.
	Apps []apps.App `yaml:"apps"`
	// Redis, when its URL is set, makes the node one of a cluster that
	// shares its state through Redis. Without it the node serves alone,
	// from memory.
	Redis Redis `yaml:"redis"`
	// Webhook holds the node's webhook settings (batching, delay,
	// retries); each app lists its own targets.
	Webhook Webhook `yaml:"webhook"`
	// Centrifugo holds the timers of the Centrifugo client protocol.
	Centrifugo Centrifugo `yaml:"centrifugo"`

	// DevApp is true when no app was configured and the built-in
	// development app is served.
	DevApp bool `yaml:"-"`
	// Version and Commit describe the running binary (herald_build_info);
	// the command sets them, configuration does not.
	Version string `yaml:"-"`
	Commit  string `yaml:"-"`
}

// Load reads flags from args, then HERALD_* variables through getenv, then
// the YAML file named by --config or HERALD_CONFIG. A flag beats a
// variable, and either beats the file. For --help it returns an error
// wrapping flag.ErrHelp with the usage, for --version ErrVersion.
func Load(args []string, getenv func(string) string) (Config, error) {
	fs := flag.NewFlagSet("herald", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f := defineFlags(fs)
	if err := fs.Parse(args); err != nil {
		return Config{}, fmt.Errorf("%w\n%s%s", err, Usage(fs), subcommands)
	}
	if *f.version {
		// Before anything is read: a version check must not depend on a
		// config file being readable or the settings being valid.
		return Config{}, ErrVersion
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q\n%s", fs.Arg(0), Usage(fs))
	}
	return f.load(getenv)
}

// subcommands ends herald's usage.
const subcommands = `
Subcommands, which read the same settings (docs/backend.md):
  herald token channel|user|jwt|check   print or check the tokens of an app's auth endpoints
  herald auth-server                    development auth endpoints that authorize everyone
`

// EnvEncryptionMasterKey is where herald token and herald auth-server
// take the master key of private-encrypted channels from when their
// --encryption-master-key flag is not given: a flag's value is in every
// process listing and in the shell's history, a variable's is not. The
// server itself never reads it, since it never holds the key.
const EnvEncryptionMasterKey = "HERALD_ENCRYPTION_MASTER_KEY"

// LoadCommand reads the settings for a subcommand of herald (herald token,
// herald auth-server): the same flags, variables and file as Load, plus
// the subcommand's own flags, which register adds to the set. Flags and
// positional arguments may come in any order; the positional ones are
// returned. usage is the first line of the help text.
func LoadCommand(usage string, args []string, getenv func(string) string, register func(fs *flag.FlagSet)) (Config, []string, error) {
	fs := flag.NewFlagSet("herald", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	// The subcommand's flags first: one of the same name as a setting's
	// replaces it (see defineFlags).
	if register != nil {
		register(fs)
	}
	f := defineFlags(fs)
	help := func() string { return strings.Replace(Usage(fs), "Usage: herald [flags]", "Usage: "+usage, 1) }
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return Config{}, nil, fmt.Errorf("%w\n%s", err, help())
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if *f.version {
		return Config{}, nil, ErrVersion
	}
	c, err := f.load(getenv)
	return c, pos, err
}

// flags are the settings' flags, defined on a FlagSet by defineFlags.
type flags struct {
	addr, file, appID, appKey, appSecret, clientEvents, jwtSecret, jwtPublicKey,
	apiKey, clientPub, pusherJWT, webhookURL, logLevel, transport, debugAddr, metricsAddr,
	stopDelay, redisURL, nodeID *string
	version *bool
}

// defineFlags defines the settings' flags on fs. A name fs already has
// belongs to a subcommand (herald auth-server's own --addr): the setting
// then has no flag there, only its variable and file key.
func defineFlags(fs *flag.FlagSet) *flags {
	var (
		unset = func() *string { s := ""; return &s }
		str   = func(name, usage string) *string {
			if fs.Lookup(name) != nil {
				return unset()
			}
			return fs.String(name, "", usage)
		}
	)
	var (
		addr         = str("addr", "listen address (HERALD_ADDR), default "+DefaultAddr+", or "+DefaultDevAddr+" when serving the development app")
		file         = str("config", "YAML config file (HERALD_CONFIG)")
		appID        = str("app-id", "id of the single app (HERALD_APP_ID)")
		appKey       = str("app-key", "key of the single app (HERALD_APP_KEY)")
		appSecret    = str("app-secret", "secret of the single app (HERALD_APP_SECRET)")
		clientEvents = str("app-client-events", "true to allow client events for the single app (HERALD_APP_CLIENT_EVENTS)")
		jwtSecret    = str("app-jwt-secret", "HMAC key of the single app's JWTs (HERALD_APP_JWT_SECRET); default the app secret")
		jwtPublicKey = str("app-jwt-public-key", "PEM file of the single app's RSA or ECDSA JWT public key (HERALD_APP_JWT_PUBLIC_KEY)")
		apiKey       = str("app-api-key", "key of the single app's Centrifugo-style server API (HERALD_APP_API_KEY); default none: that API refuses the app")
		clientPub    = str("app-client-publish", "true to allow Centrifugo clients' publish for the single app (HERALD_APP_CLIENT_PUBLISH)")
		pusherJWT    = str("app-pusher-jwt-auth", "true to accept subscription JWTs as Pusher channel auth for the single app (HERALD_APP_PUSHER_JWT_AUTH)")
		webhookURL   = str("app-webhook-url", "send every webhook of the single app to this http(s) URL (HERALD_APP_WEBHOOK_URL)")
		logLevel     = str("log-level", "debug, info, warn or error (HERALD_LOG_LEVEL)")
		transport    = str("transport", "epoll or goroutine (HERALD_TRANSPORT)")
		debugAddr    = str("debug-addr", "serve /debug/pprof/ on this address, e.g. 127.0.0.1:6060 (HERALD_DEBUG_ADDR)")
		version      = fs.Bool("version", false, "print the version and commit, and exit")
		metricsAddr  = str("metrics-addr", "serve /metrics on this address instead of the main one, e.g. 127.0.0.1:9601 (HERALD_METRICS_ADDR)")
		stopDelay    = str("shutdown-delay", "keep serving this long after SIGTERM, /readyz answering 503, before closing clients, e.g. 5s (HERALD_SHUTDOWN_DELAY); default 0")
		redisURL     = str("redis-url", "join a cluster through this Redis, redis://[user:pass@]host:port/db or rediss:// for TLS (HERALD_REDIS_URL); default none: a single node in memory")
		nodeID       = str("node-id", "this node's id in the cluster (HERALD_NODE_ID); default generated at start")
	)
	return &flags{addr: addr, file: file, appID: appID, appKey: appKey, appSecret: appSecret, clientEvents: clientEvents,
		jwtSecret: jwtSecret, jwtPublicKey: jwtPublicKey, apiKey: apiKey, clientPub: clientPub, pusherJWT: pusherJWT,
		webhookURL: webhookURL, logLevel: logLevel, transport: transport, debugAddr: debugAddr, metricsAddr: metricsAddr, stopDelay: stopDelay,
		redisURL: redisURL, nodeID: nodeID, version: version}
}

// load reads the variables and the file under the parsed flags.
func (f *flags) load(getenv func(string) string) (Config, error) {
	var (
		addr, file, appID, appKey, appSecret, clientEvents     = f.addr, f.file, f.appID, f.appKey, f.appSecret, f.clientEvents
		jwtSecret, jwtPublicKey, apiKey, clientPub, pusherJWT  = f.jwtSecret, f.jwtPublicKey, f.apiKey, f.clientPub, f.pusherJWT
		logLevel, transport, debugAddr, metricsAddr, stopDelay = f.logLevel, f.transport, f.debugAddr, f.metricsAddr, f.stopDelay
		redisURL, nodeID, webhookURL                           = f.redisURL, f.nodeID, f.webhookURL
	)
	pick := func(flagVal, env string) string {
		if flagVal != "" {
			return flagVal
		}
		return getenv(env)
	}

	var c Config
	path := pick(*file, "HERALD_CONFIG")
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return Config{}, fmt.Errorf("config file: %w", err)
		}
		if err := decodeYAML(data, &c); err != nil {
			return Config{}, fmt.Errorf("config file %s: %w", path, err)
		}
	}
	if v := pick(*addr, "HERALD_ADDR"); v != "" {
		c.Addr = v
	}
	if v := pick(*logLevel, "HERALD_LOG_LEVEL"); v != "" {
		c.LogLevel = v
	}
	if v := pick(*transport, "HERALD_TRANSPORT"); v != "" {
		c.Transport = v
	}
	if v := pick(*debugAddr, "HERALD_DEBUG_ADDR"); v != "" {
		c.DebugAddr = v
	}
	if v := pick(*metricsAddr, "HERALD_METRICS_ADDR"); v != "" {
		c.MetricsAddr = v
	}
	if v := pick(*stopDelay, "HERALD_SHUTDOWN_DELAY"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return Config{}, fmt.Errorf("HERALD_SHUTDOWN_DELAY (--shutdown-delay): %q is not a duration such as 5s", v)
		}
		c.ShutdownDelay = d
	}

	if err := c.Webhook.fromEnv(getenv); err != nil {
		return Config{}, err
	}
	if err := c.Redis.fromEnv(pick(*redisURL, "HERALD_REDIS_URL"), pick(*nodeID, "HERALD_NODE_ID"), getenv); err != nil {
		return Config{}, err
	}
	if err := c.Centrifugo.fromEnv(getenv); err != nil {
		return Config{}, err
	}

	id, key, secret := pick(*appID, "HERALD_APP_ID"), pick(*appKey, "HERALD_APP_KEY"), pick(*appSecret, "HERALD_APP_SECRET")
	// Settings of the single app, which apply to the app of HERALD_APP_ID,
	// HERALD_APP_KEY and HERALD_APP_SECRET, or to the development app.
	appSettings := []appSetting{
		{env: "HERALD_APP_CLIENT_EVENTS", flag: "app-client-events", key: "client_events", val: pick(*clientEvents, "HERALD_APP_CLIENT_EVENTS"), set: boolSetting(func(a *apps.App) *bool { return &a.ClientEvents })},
		{env: "HERALD_APP_JWT_SECRET", flag: "app-jwt-secret", key: "jwt_secret", val: pick(*jwtSecret, "HERALD_APP_JWT_SECRET"), set: func(a *apps.App, v string) error { a.JWTSecret = v; return nil }},
		{env: "HERALD_APP_JWT_PUBLIC_KEY", flag: "app-jwt-public-key", key: "jwt_public_key", val: pick(*jwtPublicKey, "HERALD_APP_JWT_PUBLIC_KEY"), set: func(a *apps.App, v string) error { a.JWTPublicKey = v; return nil }},
		{env: "HERALD_APP_API_KEY", flag: "app-api-key", key: "api_key", val: pick(*apiKey, "HERALD_APP_API_KEY"), set: func(a *apps.App, v string) error { a.APIKey = v; return nil }},
		{env: "HERALD_APP_CLIENT_PUBLISH", flag: "app-client-publish", key: "client_publish", val: pick(*clientPub, "HERALD_APP_CLIENT_PUBLISH"), set: boolSetting(func(a *apps.App) *bool { return &a.ClientPublish })},
		{env: "HERALD_APP_PUSHER_JWT_AUTH", flag: "app-pusher-jwt-auth", key: "pusher_jwt_auth", val: pick(*pusherJWT, "HERALD_APP_PUSHER_JWT_AUTH"), set: boolSetting(func(a *apps.App) *bool { return &a.PusherJWTAuth })},
		{env: "HERALD_APP_WEBHOOK_URL", flag: "app-webhook-url", key: "webhooks", val: pick(*webhookURL, "HERALD_APP_WEBHOOK_URL"), set: func(a *apps.App, v string) error {
			a.Webhooks = []apps.Webhook{{URL: v}}
			return nil
		}},
	}
	applySettings := func(a *apps.App) error {
		for _, st := range appSettings {
			if st.val == "" {
				continue
			}
			if err := st.set(a, st.val); err != nil {
				return fmt.Errorf("%s: %q %w", st.env, st.val, err)
			}
		}
		return nil
	}
	if id != "" || key != "" || secret != "" {
		if id == "" || key == "" || secret == "" {
			return Config{}, errors.New("HERALD_APP_ID, HERALD_APP_KEY and HERALD_APP_SECRET (or --app-id, --app-key, --app-secret) must be set together")
		}
		a := apps.App{ID: id, Key: key, Secret: secret}
		if err := applySettings(&a); err != nil {
			return Config{}, err
		}
		c.Apps = append(c.Apps, a)
	} else if len(c.Apps) > 0 {
		for _, st := range appSettings {
			if st.val != "" {
				// It would silently do nothing: the file's apps say it themselves.
				return Config{}, fmt.Errorf("%s (--%s) applies to the app of HERALD_APP_ID, HERALD_APP_KEY and HERALD_APP_SECRET, or to the development app; set %s on the file's apps instead", st.env, st.flag, st.key)
			}
		}
	}
	if len(c.Apps) == 0 {
		c.DevApp = true
		dev := apps.App{ID: DevAppID, Key: DevAppKey, Secret: DevAppSecret, APIKey: DevAppAPIKey, ClientEvents: true}
		if err := applySettings(&dev); err != nil {
			return Config{}, err
		}
		c.Apps = []apps.App{dev}
	}
	c.applyDefaults()
	if err := c.Validate(); err != nil {
		return Config{}, withSource(err, path, map[string]string{"shutdown-delay": *stopDelay}, getenv)
	}
	return c, nil
}

// appSetting is a setting of the single app from a flag or variable.
type appSetting struct {
	env, flag, key string // the variable, the flag, the YAML key of the file's apps
	val            string
	set            func(a *apps.App, v string) error
}

func boolSetting(field func(a *apps.App) *bool) func(a *apps.App, v string) error {
	return func(a *apps.App, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return errors.New("is not true or false")
		}
		*field(a) = b
		return nil
	}
}

func decodeYAML(data []byte, c *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true) // a misspelt key is an error, not a silent default
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	// Decode reads the first document only. The apps of a second one
	// (two files concatenated, a stray ---) would be dropped without a
	// word, and a file whose first document is empty would even leave
	// Herald serving the development app, whose credentials are public.
	// An empty document after it (a trailing ---) holds nothing to drop.
	for {
		var rest yaml.Node
		err := dec.Decode(&rest)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil || !emptyDocument(&rest) {
			return errors.New("the file has more than one YAML document (a --- line); Herald reads one")
		}
	}
}

// emptyDocument reports whether n is a document with no content, or only
// a null.
func emptyDocument(n *yaml.Node) bool {
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	return n.Kind == 0 || (n.Kind == yaml.DocumentNode && len(n.Content) == 0) ||
		(n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

func (c *Config) applyDefaults() {
	if c.Addr == "" {
		c.Addr = DefaultAddr
		if c.DevApp {
			c.Addr = DefaultDevAddr
		}
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.LogLevel == "" {
		c.LogLevel = "info"
	}
	*c = c.WithHTTPDefaults()
	c.Redis.applyDefaults()
	c.Webhook.applyDefaults()
	for i := range c.Apps {
		c.Apps[i].Normalize()
	}
}

// WithHTTPDefaults returns c with each zero HTTP timeout and the zero
// pending-connection bound set to its default, for a Config built without
// Load.
func (c Config) WithHTTPDefaults() Config {
	c.HTTPHeaderTimeout = orDefault(c.HTTPHeaderTimeout, DefaultHTTPHeaderTimeout)
	c.HTTPBodyTimeout = orDefault(c.HTTPBodyTimeout, DefaultHTTPBodyTimeout)
	c.HTTPIdleTimeout = orDefault(c.HTTPIdleTimeout, DefaultHTTPIdleTimeout)
	c.HTTPWriteTimeout = orDefault(c.HTTPWriteTimeout, DefaultHTTPWriteTimeout)
	c.MaxPendingConnections = orDefault(c.MaxPendingConnections, DefaultMaxPendingConnections)
	return c
}

// orDefault is v, or def when v is zero.
func orDefault[T time.Duration | int](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// Validate fails fast on settings Herald cannot run with.
func (c *Config) Validate() error {
	if c.PongTimeout < 0 || c.MaxConnections < 0 || c.MaxQueueBytes < 0 || c.MaxMessageBytes < 0 || c.ShutdownTimeout < 0 {
		return errors.New("config: timeouts and limits must not be negative")
	}
	for _, v := range []struct {
		key string
		neg bool
	}{
		{"http_header_timeout", c.HTTPHeaderTimeout < 0},
		{"http_body_timeout", c.HTTPBodyTimeout < 0},
		{"http_idle_timeout", c.HTTPIdleTimeout < 0},
		{"http_write_timeout", c.HTTPWriteTimeout < 0},
		{"max_pending_connections", c.MaxPendingConnections < 0},
		{"shutdown_delay", c.ShutdownDelay < 0},
	} {
		if v.neg {
			return fmt.Errorf("config: %s must not be negative (0 means the default)", v.key)
		}
	}
	if err := c.validateBounds(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if c.MetricsAddr != "" && c.MetricsAddr == c.Addr {
		return fmt.Errorf("config: metrics_addr %q is addr; leave it empty to serve /metrics on addr", c.MetricsAddr)
	}
	switch c.Transport {
	case "", "epoll", "goroutine":
	default:
		return fmt.Errorf("config: transport %q is not epoll or goroutine", c.Transport)
	}
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("config: log_level %q is not debug, info, warn or error", c.LogLevel)
	}
	if _, err := apps.NewRegistry(c.Apps); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if err := c.validateAppsFit(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if err := c.Redis.validate(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if err := c.Webhook.validate(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if err := c.Centrifugo.validate(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}

// Usage describes the flags.
func Usage(fs *flag.FlagSet) string {
	var b strings.Builder
	b.WriteString("Usage: herald [flags]\n\nFlags (each also settable by the environment variable named, if any):\n")
	fs.SetOutput(&b)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
	return b.String()
}
