package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/heraldhq/herald/internal/apps"
	"github.com/heraldhq/herald/internal/auth"
	"github.com/heraldhq/herald/internal/config"
)

// env is the single app of the tests, by the usual variables.
func testEnv(extra ...string) func(string) string {
	m := map[string]string{"HERALD_APP_ID": "1", "HERALD_APP_KEY": "key1", "HERALD_APP_SECRET": "secret1"}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i]] = extra[i+1]
	}
	return func(k string) string { return m[k] }
}

func token(t *testing.T, getenv func(string) string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := runToken(args, getenv, &out)
	return strings.TrimSpace(out.String()), err
}

func mustToken(t *testing.T, getenv func(string) string, args ...string) string {
	t.Helper()
	out, err := token(t, getenv, args...)
	if err != nil {
		t.Fatalf("herald token %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// Herald's own verification (internal/auth, the app's JWT verifier)
// accepts what herald token mints.
func TestTokensAreAcceptedByHerald(t *testing.T) {
	env := testEnv()
	var ch struct{ Auth, Channel_data, Shared_secret string }
	json.Unmarshal([]byte(mustToken(t, env, "channel", "--socket-id", "1.2", "--channel", "private-a")), &ch)
	if err := auth.VerifyToken("key1", "secret1", ch.Auth, auth.ChannelString("1.2", "private-a", "")); err != nil {
		t.Errorf("private: %v", err)
	}
	json.Unmarshal([]byte(mustToken(t, env, "channel", "--socket-id", "1.2", "--channel", "presence-r", "--user-id", "u", "--user-info", `{"name":"x"}`)), &ch)
	if ch.Channel_data != `{"user_id":"u","user_info":{"name":"x"}}` {
		t.Errorf("channel_data %s", ch.Channel_data)
	}
	if err := auth.VerifyToken("key1", "secret1", ch.Auth, auth.ChannelString("1.2", "presence-r", ch.Channel_data)); err != nil {
		t.Errorf("presence: %v", err)
	}
	mk := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	json.Unmarshal([]byte(mustToken(t, env, "channel", "--socket-id", "1.2", "--channel", "private-encrypted-e", "--encryption-master-key", mk)), &ch)
	if want := base64.StdEncoding.EncodeToString(auth.SharedSecret("private-encrypted-e", bytes.Repeat([]byte{7}, 32))); ch.Shared_secret != want {
		t.Errorf("shared_secret %s, want %s", ch.Shared_secret, want)
	}
	// The key may come from the environment instead of the command line,
	// where every process listing shows it.
	ch.Shared_secret = ""
	json.Unmarshal([]byte(mustToken(t, testEnv("HERALD_ENCRYPTION_MASTER_KEY", mk), "channel", "--socket-id", "1.2", "--channel", "private-encrypted-e")), &ch)
	if want := base64.StdEncoding.EncodeToString(auth.SharedSecret("private-encrypted-e", bytes.Repeat([]byte{7}, 32))); ch.Shared_secret != want {
		t.Errorf("shared_secret from HERALD_ENCRYPTION_MASTER_KEY %s, want %s", ch.Shared_secret, want)
	}
	if _, err := token(t, testEnv("HERALD_ENCRYPTION_MASTER_KEY", "c2hvcnQ="), "channel", "--socket-id", "1.2", "--channel", "private-encrypted-e"); err == nil || !strings.Contains(err.Error(), "HERALD_ENCRYPTION_MASTER_KEY") {
		t.Errorf("a short key from the environment: %v", err)
	}
	var u struct{ Auth, User_data string }
	json.Unmarshal([]byte(mustToken(t, env, "user", "--socket-id", "1.2", "--user-id", "u", "--watchlist", "a,b")), &u)
	if u.User_data != `{"id":"u","watchlist":["a","b"]}` {
		t.Errorf("user_data %s", u.User_data)
	}
	if err := auth.VerifyToken("key1", "secret1", u.Auth, auth.UserString("1.2", u.User_data)); err != nil {
		t.Errorf("user: %v", err)
	}

	dir := t.TempDir()
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for _, k := range []struct {
		alg  string
		priv any
		pub  any
	}{{"RS256", rsaKey, &rsaKey.PublicKey}, {"ES256", ecKey, &ecKey.PublicKey}, {"HS256", nil, nil}} {
		t.Run(k.alg, func(t *testing.T) {
			env := testEnv("HERALD_APP_JWT_SECRET", "jwt1")
			args := []string{"--alg", k.alg}
			if k.priv != nil {
				privFile, pubFile := writeKeys(t, dir, k.alg, k.priv, k.pub)
				env = testEnv("HERALD_APP_JWT_PUBLIC_KEY", pubFile)
				args = append(args, "--key", privFile)
			}
			cfg, err := config.Load(nil, env)
			if err != nil {
				t.Fatal(err)
			}
			reg, err := apps.NewRegistry(cfg.Apps)
			if err != nil {
				t.Fatal(err)
			}
			v := reg.All()[0].JWT()
			conn := mustToken(t, env, append([]string{"jwt", "--sub", "u", "--info", `{"a":1}`}, args...)...)
			cc, err := v.Connect(conn, time.Now())
			if err != nil || cc.Sub != "u" || string(cc.Info) != `{"a":1}` || time.Until(cc.Expires) < 59*time.Minute {
				t.Errorf("connection token: %+v %v", cc, err)
			}
			sub := mustToken(t, env, append([]string{"jwt", "--sub", "u", "--channel", "$x", "--client", "c1", "--ttl", "0"}, args...)...)
			sc, err := v.Subscribe(sub, time.Now())
			if err != nil || sc.Channel != "$x" || sc.Client != "c1" || !sc.Expires.IsZero() {
				t.Errorf("subscription token: %+v %v", sc, err)
			}
			if out := mustToken(t, env, "check", sub, "--channel", "$x"); !strings.HasPrefix(out, "valid: subscription token") {
				t.Errorf("check: %s", out)
			}
		})
	}
}

func writeKeys(t *testing.T, dir, name string, priv, pub any) (string, string) {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	privFile, pubFile := filepath.Join(dir, name+".key"), filepath.Join(dir, name+".pub")
	os.WriteFile(privFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	os.WriteFile(pubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o600)
	return privFile, pubFile
}

// Each diagnosis of herald token check, from a token crafted to have it.
func TestCheckDiagnoses(t *testing.T) {
	env := testEnv("HERALD_APP_JWT_SECRET", "jwt1")
	sign := func(secret, msg string) string { return "key1:" + auth.Sign(secret, msg) }
	presence := `{"user_id":"u","user_info":{"name":"x"}}`
	presenceAuth := func(data string) string {
		b, _ := json.Marshal(map[string]string{"auth": sign("secret1", "1.2:presence-r:"+presence), "channel_data": data})
		return string(b)
	}
	// signedAs is an auth endpoint's answer for data under field,
	// correctly signed over prefix:data.
	signedAs := func(prefix, field, data string) string {
		b, _ := json.Marshal(map[string]string{"auth": sign("secret1", prefix+":"+data), field: data})
		return string(b)
	}
	hs := func(secret string, c jwt.MapClaims) string {
		s, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(secret))
		return s
	}
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	rs, _ := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"sub": "u"}).SignedString(rsaKey)
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"sub": "u"}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	expAt := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

	tests := []struct {
		name string
		args []string
		want string // in the error; "" means valid
	}{
		{"valid private", []string{sign("secret1", "1.2:private-a"), "--socket-id", "1.2", "--channel", "private-a"}, ""},
		{"valid presence JSON", []string{presenceAuth(presence), "--socket-id", "1.2", "--channel", "presence-r"}, ""},
		{"malformed", []string{"garbage", "--socket-id", "1.2", "--channel", "private-a"}, "not key:signature"},
		{"short signature", []string{"key1:abc", "--socket-id", "1.2", "--channel", "private-a"}, "not 64 hex digits"},
		{"wrong key", []string{"key9:" + auth.Sign("secret1", "1.2:private-a"), "--socket-id", "1.2", "--channel", "private-a"}, `wrong key: the token names key "key9"`},
		{"wrong secret (the development app's)", []string{sign("app-secret", "1.2:private-a"), "--socket-id", "1.2", "--channel", "private-a"}, "wrong secret: signed with the development app's secret"},
		{"wrong secret (the JWT secret)", []string{sign("jwt1", "1.2:private-a"), "--socket-id", "1.2", "--channel", "private-a"}, "wrong secret: signed with the app's JWT secret"},
		{"other socket", []string{sign("secret1", "1.2:private-a"), "--socket-id", "1.3", "--channel", "private-a"}, "for another socket id or channel"},
		{"other channel", []string{sign("secret1", "1.2:private-a"), "--socket-id", "1.2", "--channel", "private-b"}, "for another socket id or channel"},
		{"tampered channel_data, re-encoded", []string{presenceAuth(`{"user_id": "u", "user_info": {"name": "x"}}`), "--socket-id", "1.2", "--channel", "presence-r"}, "tampered channel_data"},
		{"tampered channel_data, added", []string{sign("secret1", "1.2:private-a"), "--channel-data", `{"user_id":"x"}`, "--socket-id", "1.2", "--channel", "private-a"}, "tampered channel_data: the signature is for no channel_data"},
		{"tampered channel_data, other user", []string{presenceAuth(`{"user_id":"admin","user_info":{"name":"x"}}`), "--socket-id", "1.2", "--channel", "presence-r"}, "channel_data or user_data was changed"},
		{"signed, but user_id too long", []string{signedAs("1.2:presence-r", "channel_data", `{"user_id":"`+strings.Repeat("u", 129)+`"}`), "--socket-id", "1.2", "--channel", "presence-r"},
			"the signature is right, but Herald refuses the subscription: user_id is 129 characters, at most 128"},
		{"signed, but user_info too large", []string{signedAs("1.2:presence-r", "channel_data", `{"user_id":"u","user_info":"`+strings.Repeat("i", 1100)+`"}`), "--socket-id", "1.2", "--channel", "presence-r"},
			"user_info is 1102 bytes, at most 1024 allowed"},
		{"signed, but channel_data not JSON", []string{signedAs("1.2:presence-r", "channel_data", `{"user_id":`), "--socket-id", "1.2", "--channel", "presence-r"},
			"refuses the subscription: channel_data is not a JSON object"},
		{"signed sign-in", []string{signedAs("1.2::user:", "user_data", `{"id":"u1","user_info":{"n":1}}`), "--socket-id", "1.2"}, ""},
		{"signed, but sign-in id not allowed", []string{signedAs("1.2::user:", "user_data", `{"id":"a b"}`), "--socket-id", "1.2"},
			`refuses the sign-in: user id "a b" may only contain`},
		{"signed, but sign-in without id", []string{signedAs("1.2::user:", "user_data", `{"user_info":{}}`), "--socket-id", "1.2"},
			"the signature is right, but Herald refuses the sign-in"},
		{"valid JWT", []string{hs("jwt1", jwt.MapClaims{"sub": "u", "channel": "$x"}), "--channel", "$x"}, ""},
		{"JWT other channel", []string{hs("jwt1", jwt.MapClaims{"sub": "u", "channel": "$x"}), "--channel", "$y"}, `other channel: the token is for channel "$x", not "$y"`},
		{"JWT other client", []string{hs("jwt1", jwt.MapClaims{"sub": "u", "channel": "$x", "client": "c1"}), "--client", "c2"}, `other client`},
		{"JWT wrong key", []string{hs("nope", jwt.MapClaims{"sub": "u"})}, "wrong key: the HS256 signature does not verify"},
		{"JWT signed with the app secret", []string{hs("secret1", jwt.MapClaims{"sub": "u"})}, "wrong key: signed with the app secret"},
		{"JWT expired", []string{hs("jwt1", jwt.MapClaims{"sub": "u", "exp": expAt.Unix()})}, "expired at 2026-01-02T03:04:05Z"},
		{"JWT algorithm not allowed", []string{rs}, "algorithm RS256 not allowed: this app accepts HS256, HS384, HS512"},
		{"JWT alg none", []string{none}, "algorithm none not allowed"},
		{"JWT tampered", []string{hs("jwt1", jwt.MapClaims{"sub": "u"}) + "x"}, "wrong key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := token(t, env, append([]string{"check"}, tt.args...)...)
			if tt.want == "" {
				if err != nil || !strings.HasPrefix(out, "valid: ") {
					t.Fatalf("%q %v, want valid", out, err)
				}
				return
			}
			if !errors.Is(err, errInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("%v (out %q), want an invalid verdict with %q", err, out, tt.want)
			}
		})
	}
}

func TestTokenUsageErrors(t *testing.T) {
	env := testEnv()
	for _, args := range [][]string{
		{},
		{"nope"},
		{"channel", "--channel", "private-a"},
		{"channel", "--socket-id", "1.2", "--channel", "presence-a"},
		{"channel", "--socket-id", "1.2", "--channel", "private-encrypted-a"},
		{"channel", "--socket-id", "1.2", "--channel", "private-a", "extra"},
		{"channel", "--socket-id", "1.2", "--channel", "presence-a", "--user-id", "u", "--user-info", "{not json"},
		{"jwt", "--alg", "RS256"},
		{"jwt", "--alg", "HS256", "--key", "x.pem"},
		{"check"},
		{"check", "key1:" + strings.Repeat("a", 64)},
	} {
		if _, err := token(t, env, args...); err == nil || errors.Is(err, errInvalid) {
			t.Errorf("herald token %q: %v, want a usage error", args, err)
		}
	}
}

// herald token check reads anything a user pastes: it never panics, and
// says valid only for a token signed with the app's secret.
func FuzzTokenCheck(f *testing.F) {
	f.Add("key1:"+auth.Sign("secret1", "1.2:private-a"), "private-a")
	f.Add(`{"auth":"key1:00","channel_data":"{\"user_id\":1}"}`, "presence-a")
	f.Add(`{"token":"a.b.c"}`, "")
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1In0.", "$x")
	cfg, err := config.Load(nil, testEnv())
	if err != nil {
		f.Fatal(err)
	}
	app := cfg.Apps[0]
	f.Fuzz(func(t *testing.T, tok, channel string) {
		var tf tokenFlags
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		tf.register(fs)
		*tf.socketID, *tf.channel = "1.2", channel
		var out bytes.Buffer
		if err := tokenCheck(cfg, app, &tf, tok, time.Now(), &out); err == nil && strings.Contains(tok, "key1:") &&
			!strings.Contains(tok, auth.Sign("secret1", "1.2:"+channel)) && !strings.Contains(tok, `"auth"`) {
			t.Fatalf("valid without the app's signature: %q %q: %s", tok, channel, out.String())
		}
	})
}
