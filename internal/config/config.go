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

	"gopkg.in/yaml.v3"

	"github.com/heraldhq/herald/internal/apps"
)

// Defaults.
const (
	DefaultAddr            = ":6001"
	DefaultShutdownTimeout = 5 * time.Second
	DevAppID               = "app-id"
	DevAppKey              = "app-key"
	DevAppSecret           = "app-secret"
)

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
	// ShutdownTimeout bounds the graceful shutdown.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `yaml:"log_level"`
	// Apps are the tenants served.
	Apps []apps.App `yaml:"apps"`

	// DevApp is true when no app was configured and the built-in
	// development app is served.
	DevApp bool `yaml:"-"`
}

// Load reads flags from args, then HERALD_* variables through getenv, then
// the YAML file named by --config or HERALD_CONFIG. A flag beats a
// variable, and either beats the file.
func Load(args []string, getenv func(string) string) (Config, error) {
	fs := flag.NewFlagSet("herald", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var (
		addr         = fs.String("addr", "", "listen address (HERALD_ADDR), default "+DefaultAddr)
		file         = fs.String("config", "", "YAML config file (HERALD_CONFIG)")
		appID        = fs.String("app-id", "", "id of the single app (HERALD_APP_ID)")
		appKey       = fs.String("app-key", "", "key of the single app (HERALD_APP_KEY)")
		appSecret    = fs.String("app-secret", "", "secret of the single app (HERALD_APP_SECRET)")
		clientEvents = fs.String("app-client-events", "", "true to allow client events for the single app (HERALD_APP_CLIENT_EVENTS)")
		logLevel     = fs.String("log-level", "", "debug, info, warn or error (HERALD_LOG_LEVEL)")
		transport    = fs.String("transport", "", "epoll or goroutine (HERALD_TRANSPORT)")
		debugAddr    = fs.String("debug-addr", "", "serve /debug/pprof/ on this address, e.g. 127.0.0.1:6060 (HERALD_DEBUG_ADDR)")
	)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return Config{}, fmt.Errorf("%w\n%s", err, Usage(fs))
		}
		return Config{}, fmt.Errorf("%w\n%s", err, Usage(fs))
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q\n%s", fs.Arg(0), Usage(fs))
	}
	pick := func(flagVal, env string) string {
		if flagVal != "" {
			return flagVal
		}
		return getenv(env)
	}

	var c Config
	if path := pick(*file, "HERALD_CONFIG"); path != "" {
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

	id, key, secret := pick(*appID, "HERALD_APP_ID"), pick(*appKey, "HERALD_APP_KEY"), pick(*appSecret, "HERALD_APP_SECRET")
	ce := pick(*clientEvents, "HERALD_APP_CLIENT_EVENTS")
	if id != "" || key != "" || secret != "" {
		if id == "" || key == "" || secret == "" {
			return Config{}, errors.New("HERALD_APP_ID, HERALD_APP_KEY and HERALD_APP_SECRET (or --app-id, --app-key, --app-secret) must be set together")
		}
		a := apps.App{ID: id, Key: key, Secret: secret}
		if ce != "" {
			b, err := strconv.ParseBool(ce)
			if err != nil {
				return Config{}, fmt.Errorf("HERALD_APP_CLIENT_EVENTS: %q is not true or false", ce)
			}
			a.ClientEvents = b
		}
		c.Apps = append(c.Apps, a)
	} else if ce != "" && len(c.Apps) > 0 {
		// It would silently do nothing: the file's apps say it themselves.
		return Config{}, errors.New("HERALD_APP_CLIENT_EVENTS (--app-client-events) applies to the app of HERALD_APP_ID, HERALD_APP_KEY and HERALD_APP_SECRET, or to the development app; set client_events on the file's apps instead")
	}
	if len(c.Apps) == 0 {
		c.DevApp = true
		dev := apps.App{ID: DevAppID, Key: DevAppKey, Secret: DevAppSecret, ClientEvents: true}
		if ce != "" {
			b, err := strconv.ParseBool(ce)
			if err != nil {
				return Config{}, fmt.Errorf("HERALD_APP_CLIENT_EVENTS: %q is not true or false", ce)
			}
			dev.ClientEvents = b
		}
		c.Apps = []apps.App{dev}
	}
	c.applyDefaults()
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

func decodeYAML(data []byte, c *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true) // a misspelt key is an error, not a silent default
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

func (c *Config) applyDefaults() {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.LogLevel == "" {
		c.LogLevel = "info"
	}
	for i := range c.Apps {
		c.Apps[i].Normalize()
	}
}

// Validate fails fast on settings Herald cannot run with.
func (c *Config) Validate() error {
	if c.PongTimeout < 0 || c.MaxConnections < 0 || c.MaxQueueBytes < 0 || c.MaxMessageBytes < 0 || c.ShutdownTimeout < 0 {
		return errors.New("config: timeouts and limits must not be negative")
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
	return nil
}

// Usage describes the flags.
func Usage(fs *flag.FlagSet) string {
	var b strings.Builder
	b.WriteString("Usage: herald [flags]\n\nFlags (each also settable by the environment variable named):\n")
	fs.SetOutput(&b)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
	return b.String()
}
