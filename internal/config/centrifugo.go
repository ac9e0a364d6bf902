package config

import (
	"fmt"
	"time"
)

// Centrifugo holds the timers of the Centrifugo client protocol, named as
// Centrifugo names them (its client.* settings). Zero is Centrifugo's
// default.
type Centrifugo struct {
	// PingInterval is the time between server pings (default 25s; whole
	// seconds, at least 1s, since clients are told it in seconds).
	PingInterval time.Duration `yaml:"ping_interval"`
	// PongTimeout is how long a client has to answer a ping (default 8s);
	// then it is disconnected with 3012 "no pong".
	PongTimeout time.Duration `yaml:"pong_timeout"`
	// ExpiredCloseDelay is the grace after a connection's or subscription's
	// token expires for the client to refresh it (default 25s); then the
	// connection is closed with 3005, or the subscription ended with 2501.
	ExpiredCloseDelay time.Duration `yaml:"expired_close_delay"`
	// StaleCloseDelay is how long a connection may stay without sending
	// its connect command (default 10s); then it is closed with 3502.
	StaleCloseDelay time.Duration `yaml:"stale_close_delay"`
}

// fromEnv applies the HERALD_CENTRIFUGO_* variables.
func (c *Centrifugo) fromEnv(getenv func(string) string) error {
	for _, v := range []struct {
		env string
		dst *time.Duration
	}{
		{"HERALD_CENTRIFUGO_PING_INTERVAL", &c.PingInterval},
		{"HERALD_CENTRIFUGO_PONG_TIMEOUT", &c.PongTimeout},
		{"HERALD_CENTRIFUGO_EXPIRED_CLOSE_DELAY", &c.ExpiredCloseDelay},
		{"HERALD_CENTRIFUGO_STALE_CLOSE_DELAY", &c.StaleCloseDelay},
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

func (c *Centrifugo) validate() error {
	for _, v := range []struct {
		key string
		d   time.Duration
	}{
		{"ping_interval", c.PingInterval},
		{"pong_timeout", c.PongTimeout},
		{"expired_close_delay", c.ExpiredCloseDelay},
		{"stale_close_delay", c.StaleCloseDelay},
	} {
		if v.d < 0 {
			return fmt.Errorf("centrifugo.%s must not be negative (0 means the default)", v.key)
		}
	}
	if c.PingInterval != 0 && (c.PingInterval < time.Second || c.PingInterval%time.Second != 0) {
		return &settingError{env: "HERALD_CENTRIFUGO_PING_INTERVAL", msg: fmt.Sprintf("centrifugo.ping_interval %s is not a whole number of seconds of at least 1s", c.PingInterval)}
	}
	return check(
		bound[time.Duration]{key: "centrifugo.ping_interval", env: "HERALD_CENTRIFUGO_PING_INTERVAL", v: c.PingInterval, max: maxCentrifugoPingInterval},
		bound[time.Duration]{key: "centrifugo.pong_timeout", env: "HERALD_CENTRIFUGO_PONG_TIMEOUT", v: c.PongTimeout, max: maxCentrifugoPongTimeout},
		bound[time.Duration]{key: "centrifugo.expired_close_delay", env: "HERALD_CENTRIFUGO_EXPIRED_CLOSE_DELAY", v: c.ExpiredCloseDelay, max: maxCentrifugoExpiredDelay},
		bound[time.Duration]{key: "centrifugo.stale_close_delay", env: "HERALD_CENTRIFUGO_STALE_CLOSE_DELAY", v: c.StaleCloseDelay, max: maxCentrifugoStaleDelay},
	)
}
