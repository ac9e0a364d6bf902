package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Defaults of cluster mode.
const (
	DefaultRedisPrefix = "herald"
	// DefaultNodeTTL is how long a node's registration lives in Redis
	// without a refresh: a node that crashed has its connections removed
	// from presence channels and counts after at most this (plus one
	// refresh of a surviving node).
	DefaultNodeTTL = 20 * time.Second
	// DefaultRefreshInterval is how often a node refreshes its registration.
	DefaultRefreshInterval = 5 * time.Second
)

// Redis configures cluster mode: the nodes that name the same Redis (and
// prefix) share their channels, presence, cached events and signed-in
// users. It is off while URL is empty.
type Redis struct {
	// URL is redis://[user:pass@]host:port/db, or rediss:// for TLS. With
	// Sentinel its host is not used; its credentials, database and scheme
	// are.
	URL string `yaml:"url"`
	// TLS is for a rediss:// URL.
	TLS RedisTLS `yaml:"tls"`
	// Sentinel, when Master is set, finds the Redis master through the
	// sentinels at Addrs.
	Sentinel RedisSentinel `yaml:"sentinel"`
	// Prefix starts every Redis key and channel Herald uses (default
	// "herald"): clusters that share one Redis need one each.
	Prefix string `yaml:"prefix"`
	// NodeID names this node in the cluster; empty: generated at start.
	// Two running nodes must never share one.
	NodeID string `yaml:"node_id"`
	// NodeTTL is how long the node's registration outlives its last
	// refresh (default 20s); RefreshInterval how often it is refreshed
	// (default 5s), which must be well below NodeTTL.
	NodeTTL         time.Duration `yaml:"node_ttl"`
	RefreshInterval time.Duration `yaml:"refresh_interval"`
}

// RedisTLS configures the TLS of a rediss:// connection. Without a CA file
// the system's roots verify the server.
type RedisTLS struct {
	CAFile     string `yaml:"ca_file"`
	CertFile   string `yaml:"cert_file"` // client certificate, with KeyFile
	KeyFile    string `yaml:"key_file"`
	ServerName string `yaml:"server_name"` // default: the host dialled
	// InsecureSkipVerify accepts any server certificate. For tests only:
	// anyone on the path can then read and forge the cluster's traffic.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

func (t RedisTLS) set() bool {
	return t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.ServerName != "" || t.InsecureSkipVerify
}

// RedisSentinel names the master and the sentinels that know where it is.
type RedisSentinel struct {
	Master string   `yaml:"master"`
	Addrs  []string `yaml:"addrs"`
}

// Enabled reports whether cluster mode is on.
func (r Redis) Enabled() bool { return r.URL != "" }

// fromEnv applies the HERALD_REDIS_* variables (and the flags' values
// given, which already beat their variables) over the file's settings.
func (r *Redis) fromEnv(redisURL, nodeID string, getenv func(string) string) error {
	if redisURL != "" {
		r.URL = redisURL
	}
	if nodeID != "" {
		r.NodeID = nodeID
	}
	for _, v := range []struct {
		env string
		dst *string
	}{
		{"HERALD_REDIS_TLS_CA_FILE", &r.TLS.CAFile},
		{"HERALD_REDIS_TLS_CERT_FILE", &r.TLS.CertFile},
		{"HERALD_REDIS_TLS_KEY_FILE", &r.TLS.KeyFile},
		{"HERALD_REDIS_SENTINEL_MASTER", &r.Sentinel.Master},
		{"HERALD_REDIS_PREFIX", &r.Prefix},
	} {
		if s := getenv(v.env); s != "" {
			*v.dst = s
		}
	}
	if s := getenv("HERALD_REDIS_SENTINEL_ADDRS"); s != "" {
		r.Sentinel.Addrs = nil
		for a := range strings.SplitSeq(s, ",") {
			if a = strings.TrimSpace(a); a != "" {
				r.Sentinel.Addrs = append(r.Sentinel.Addrs, a)
			}
		}
	}
	for _, v := range []struct {
		env string
		dst *time.Duration
	}{
		{"HERALD_REDIS_NODE_TTL", &r.NodeTTL},
		{"HERALD_REDIS_REFRESH_INTERVAL", &r.RefreshInterval},
	} {
		if s := getenv(v.env); s != "" {
			d, err := time.ParseDuration(s)
			if err != nil {
				return fmt.Errorf("%s: %q is not a duration such as 5s", v.env, s)
			}
			*v.dst = d
		}
	}
	return nil
}

func (r *Redis) applyDefaults() {
	if r.Prefix == "" {
		r.Prefix = DefaultRedisPrefix
	}
	r.NodeTTL = orDefault(r.NodeTTL, DefaultNodeTTL)
	r.RefreshInterval = orDefault(r.RefreshInterval, DefaultRefreshInterval)
}

// maxNameLen bounds the prefix and the node id, which start or name Redis
// keys.
const maxNameLen = 64

// validate checks cluster mode's settings, reading the TLS files; its
// errors never show the URL's password.
func (r Redis) validate() error {
	if !r.Enabled() {
		switch {
		case r.Sentinel.Master != "" || len(r.Sentinel.Addrs) > 0:
			return errors.New("redis.sentinel is set but redis.url (HERALD_REDIS_URL) is not; set the URL (its credentials and database are used) to enable cluster mode")
		case r.TLS.set():
			return errors.New("redis.tls is set but redis.url (HERALD_REDIS_URL) is not; set a rediss:// URL to enable cluster mode")
		}
		return nil
	}
	r.applyDefaults()
	u, err := r.parseURL()
	if err != nil {
		return err
	}
	if r.TLS.set() && u.Scheme != "rediss" {
		return fmt.Errorf("redis.tls is set but redis.url %s is not rediss://", Redact(r.URL))
	}
	if _, err := r.TLSConfig(); err != nil {
		return err
	}
	switch {
	case r.Sentinel.Master != "" && len(r.Sentinel.Addrs) == 0:
		return errors.New("redis.sentinel.master is set without redis.sentinel.addrs (HERALD_REDIS_SENTINEL_ADDRS, host:port,host:port)")
	case r.Sentinel.Master == "" && len(r.Sentinel.Addrs) > 0:
		return errors.New("redis.sentinel.addrs is set without redis.sentinel.master (HERALD_REDIS_SENTINEL_MASTER)")
	}
	for _, a := range r.Sentinel.Addrs {
		if host, port, err := net.SplitHostPort(a); err != nil || host == "" || port == "" {
			return fmt.Errorf("redis.sentinel.addrs: %q is not host:port", a)
		}
	}
	if err := checkName("redis.prefix", r.Prefix); err != nil {
		return err
	}
	if strings.Contains(r.Prefix, ":") {
		// Herald adds the separator itself: prefix "a" and "a:b" would share keys.
		return fmt.Errorf("redis.prefix %q contains ':'", r.Prefix)
	}
	if r.NodeID != "" {
		if err := checkName("redis.node_id (HERALD_NODE_ID, --node-id)", r.NodeID); err != nil {
			return err
		}
	}
	switch {
	case r.NodeTTL < 0 || r.RefreshInterval < 0:
		return errors.New("redis.node_ttl and redis.refresh_interval must not be negative (0 means the default)")
	case r.NodeTTL < time.Second:
		return &settingError{env: "HERALD_REDIS_NODE_TTL", msg: fmt.Sprintf("redis.node_ttl %v is under 1s", r.NodeTTL)}
	case r.RefreshInterval >= r.NodeTTL:
		return &settingError{env: "HERALD_REDIS_REFRESH_INTERVAL", msg: fmt.Sprintf("redis.refresh_interval %v must be less than redis.node_ttl %v, or a live node would expire between two refreshes", r.RefreshInterval, r.NodeTTL)}
	}
	return check(
		bound[time.Duration]{key: "redis.node_ttl", env: "HERALD_REDIS_NODE_TTL", v: r.NodeTTL, max: maxNodeTTL},
		bound[time.Duration]{key: "redis.refresh_interval", env: "HERALD_REDIS_REFRESH_INTERVAL", v: r.RefreshInterval, min: minRefreshInterval},
	)
}

// parseURL checks the URL's form: scheme, host and port, and database.
func (r Redis) parseURL() (*url.URL, error) {
	if !strings.Contains(r.URL, "://") {
		return nil, errors.New("redis.url (HERALD_REDIS_URL, --redis-url) has no scheme: the scheme must be redis:// or rediss:// (TLS), as in redis://host:6379/0")
	}
	u, err := url.Parse(r.URL)
	if err != nil {
		// url.Error holds the whole URL, password included: only its
		// cause is told.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("redis.url (HERALD_REDIS_URL, --redis-url) is not a URL: %v", err)
	}
	shown := Redact(r.URL)
	switch u.Scheme {
	case "redis", "rediss":
	default:
		return nil, fmt.Errorf("redis.url %s: the scheme must be redis:// or rediss:// (TLS)", shown)
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, fmt.Errorf("redis.url %s has no host", shown)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("redis.url %s: port %q is not a port number", shown, p)
		}
	}
	if db := strings.TrimPrefix(u.Path, "/"); db != "" {
		if n, err := strconv.Atoi(db); err != nil || n < 0 {
			return nil, fmt.Errorf("redis.url %s: the path %q is not a database number such as /0", shown, u.Path)
		}
	}
	return u, nil
}

// checkName refuses a prefix or node id that would make odd Redis keys:
// empty, long, or with spaces or control characters.
func checkName(what, s string) error {
	if s == "" {
		return fmt.Errorf("%s is empty", what)
	}
	if len(s) > maxNameLen {
		return fmt.Errorf("%s is longer than %d characters", what, maxNameLen)
	}
	for _, c := range s {
		if c <= ' ' || c == 0x7f || c > '~' {
			return fmt.Errorf("%s %q: only printable ASCII without spaces is allowed", what, s)
		}
	}
	return nil
}

// TLSConfig returns the TLS settings of a rediss:// URL, reading the CA
// and certificate files, or nil for a redis:// one.
func (r Redis) TLSConfig() (*tls.Config, error) {
	if !strings.HasPrefix(r.URL, "rediss:") {
		return nil, nil
	}
	t := r.TLS
	// An empty ServerName is the host dialled: the URL's, or with
	// Sentinel each sentinel's and then the master's.
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("redis.tls.ca_file (HERALD_REDIS_TLS_CA_FILE): %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("redis.tls.ca_file %s holds no PEM certificate", t.CAFile)
		}
		c.RootCAs = pool
	}
	switch {
	case t.CertFile != "" && t.KeyFile != "":
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("redis.tls.cert_file and key_file (HERALD_REDIS_TLS_CERT_FILE, HERALD_REDIS_TLS_KEY_FILE): %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	case t.CertFile != "" || t.KeyFile != "":
		return nil, errors.New("redis.tls.cert_file and redis.tls.key_file (HERALD_REDIS_TLS_CERT_FILE, HERALD_REDIS_TLS_KEY_FILE) must be set together")
	}
	return c, nil
}

// Database is the database number the URL selects (0 when it names none
// or does not parse).
func (r Redis) Database() int {
	u, err := url.Parse(r.URL)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimPrefix(u.Path, "/"))
	return n
}

// Addr describes where the node finds Redis, for logs: the URL with its
// password masked, and the sentinels if any.
func (r Redis) Addr() string {
	s := Redact(r.URL)
	if r.Sentinel.Master != "" {
		s += fmt.Sprintf(" (sentinel master %q via %s)", r.Sentinel.Master, strings.Join(r.Sentinel.Addrs, ","))
	}
	return s
}

// Redact returns a Redis URL with its password replaced by "xxxxx", fit
// for a log. A user name without a password is masked too (Redis clients
// may take redis://secret@host as the password), and a string that does
// not parse is hidden whole, for it may still hold one.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparseable URL>"
	}
	if u.User != nil {
		if _, ok := u.User.Password(); !ok {
			u.User = url.User("xxxxx")
		}
	}
	return u.Redacted()
}
