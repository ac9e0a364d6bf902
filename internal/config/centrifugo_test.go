package config

import (
	"strings"
	"testing"
	"time"
)

func TestCentrifugoSettings(t *testing.T) {
	c, err := Load(nil, env(nil))
	if err != nil || c.Centrifugo != (Centrifugo{}) {
		t.Fatalf("default: %+v, %v", c.Centrifugo, err)
	}
	file := writeFile(t, "centrifugo:\n  ping_interval: 5s\n  pong_timeout: 2s\n  expired_close_delay: 3s\n  stale_close_delay: 4s\n")
	c, err = Load([]string{"--config", file}, env(nil))
	want := Centrifugo{PingInterval: 5 * time.Second, PongTimeout: 2 * time.Second, ExpiredCloseDelay: 3 * time.Second, StaleCloseDelay: 4 * time.Second}
	if err != nil || c.Centrifugo != want {
		t.Fatalf("from the file: %+v, %v", c.Centrifugo, err)
	}
	c, err = Load([]string{"--config", file}, env(map[string]string{
		"HERALD_CENTRIFUGO_PING_INTERVAL": "7s", "HERALD_CENTRIFUGO_PONG_TIMEOUT": "1s",
		"HERALD_CENTRIFUGO_EXPIRED_CLOSE_DELAY": "1500ms", "HERALD_CENTRIFUGO_STALE_CLOSE_DELAY": "1m",
	}))
	want = Centrifugo{PingInterval: 7 * time.Second, PongTimeout: time.Second, ExpiredCloseDelay: 1500 * time.Millisecond, StaleCloseDelay: time.Minute}
	if err != nil || c.Centrifugo != want {
		t.Fatalf("env over the file: %+v, %v", c.Centrifugo, err)
	}
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"not a duration", nil, map[string]string{"HERALD_CENTRIFUGO_EXPIRED_CLOSE_DELAY": "5"}, `HERALD_CENTRIFUGO_EXPIRED_CLOSE_DELAY: "5" is not a duration`},
		{"negative", nil, map[string]string{"HERALD_CENTRIFUGO_PONG_TIMEOUT": "-1s"}, "centrifugo.pong_timeout must not be negative"},
		{"ping in fractions", nil, map[string]string{"HERALD_CENTRIFUGO_PING_INTERVAL": "1500ms"}, "centrifugo.ping_interval 1.5s is not a whole number of seconds"},
		{"unknown key", []string{"--config", writeFile(t, "centrifugo:\n  ping: 5s\n")}, nil, "field ping not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(tc.args, env(tc.env))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
