package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/apps"
	"github.com/heraldhq/herald/internal/auth"
)

// startAuthServer runs herald auth-server with args until the test ends,
// and returns the address it listens on and a stop that waits for it to
// return, reporting its error.
func startAuthServer(t *testing.T, args []string, getenv func(string) string, warn io.Writer) (addr string, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- runAuthServer(ctx, append([]string{"--addr", "127.0.0.1:0"}, args...), getenv, pw, warn)
		pw.Close()
	}()
	stop = func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(5 * time.Second):
			return errors.New("auth-server did not stop")
		}
	}
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		stop()
		t.Fatal(err)
	}
	go io.Copy(io.Discard, pr)
	m := regexp.MustCompile(`listening on (\S+)`).FindStringSubmatch(line)
	if m == nil {
		stop()
		t.Fatalf("no address in %q", line)
	}
	return m[1], stop
}

func TestAuthServer(t *testing.T) {
	var warn strings.Builder
	addr, stop := startAuthServer(t, []string{"--deny", "private-no-,private-never-"}, testEnv(), &warn)
	post := func(body string) (int, string) {
		resp, err := http.Post("http://"+addr+"/pusher/auth", "application/x-www-form-urlencoded", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := post("socket_id=1.2&channel_name=private-a")
	if want := `{"auth":"key1:` + auth.Sign("secret1", "1.2:private-a") + `"}`; code != 200 || body != want {
		t.Errorf("%d %s, want %s", code, body, want)
	}
	for _, ch := range []string{"private-no-x", "private-never-y", "private-encrypted-z"} {
		if code, _ := post("socket_id=1.2&channel_name=" + ch); code != 403 {
			t.Errorf("%s: %d, want 403", ch, code)
		}
	}
	// A page whose own name resolves to 127.0.0.1 (DNS rebinding) reads
	// the answers as same-origin: its requests carry its name as Host.
	for host, want := range map[string]int{"evil.example:6002": 403, "evil.example": 403, "localhost:6002": 200, "[::1]:6002": 200, "127.0.0.1": 200} {
		req, err := http.NewRequest("POST", "http://"+addr+"/pusher/auth", strings.NewReader("socket_id=1.2&channel_name=private-a"))
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want || (want != 200 && strings.Contains(string(b), "auth")) {
			t.Errorf("Host %s: %d %q, want %d", host, resp.StatusCode, b, want)
		}
	}
	if !strings.Contains(warn.String(), "EVERYONE") {
		t.Errorf("no warning: %q", warn.String())
	}
	if err := stop(); err != nil {
		t.Errorf("auth-server: %v", err)
	}
}

// The Centrifuge batch tokens of herald auth-server are ones the app
// accepts, jwt_audience and jwt_issuer included.
func TestAuthServerTokensCarryAppAudience(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "herald.yaml")
	if err := os.WriteFile(cfgPath, []byte("apps:\n  - id: a1\n    key: k1\n    secret: s1\n    jwt_secret: j1\n    jwt_audience: aud-1\n    jwt_issuer: iss-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr, stop := startAuthServer(t, []string{"--config", cfgPath}, func(string) string { return "" }, io.Discard)
	defer stop()
	resp, err := http.Post("http://"+addr+"/pusher/auth", "application/json", strings.NewReader(`{"client":"c-1","channels":["$a"]}`))
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]struct{ Token string }
	err = json.NewDecoder(resp.Body).Decode(&out)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	reg, err := apps.NewRegistry([]apps.App{{ID: "a1", Key: "k1", Secret: "s1", JWTSecret: "j1", JWTAudience: "aud-1", JWTIssuer: "iss-1"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.All()[0].JWT().Subscribe(out["$a"].Token, time.Now()); err != nil {
		t.Errorf("Herald refuses the batch token: %v", err)
	}
}

// The master key of private-encrypted channels may come from
// HERALD_ENCRYPTION_MASTER_KEY, out of the process listing.
func TestAuthServerMasterKeyFromEnv(t *testing.T) {
	mk := bytes.Repeat([]byte{9}, 32)
	addr, stop := startAuthServer(t, nil, testEnv("HERALD_ENCRYPTION_MASTER_KEY", base64.StdEncoding.EncodeToString(mk)), io.Discard)
	resp, err := http.Post("http://"+addr+"/pusher/auth", "application/x-www-form-urlencoded", strings.NewReader("socket_id=1.2&channel_name=private-encrypted-z"))
	if err != nil {
		t.Fatal(err)
	}
	var got struct{ Auth, Shared_secret string }
	err = json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if want := base64.StdEncoding.EncodeToString(auth.SharedSecret("private-encrypted-z", mk)); err != nil || resp.StatusCode != 200 || got.Shared_secret != want {
		t.Fatalf("%d %+v %v, want shared_secret %s", resp.StatusCode, got, err, want)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}
