package appauth_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/appauth"
	"github.com/heraldhq/herald/internal/jwtauth"
)

// Every token the package mints is one Herald's verifier accepts, with the
// claims it was minted with.
func TestTokensVerifyWithHerald(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("jwt-secret")
	now := time.Unix(1_800_000_000, 0)
	for _, tc := range []struct {
		alg  string
		sign any
		keys jwtauth.Keys
	}{
		{"HS256", secret, jwtauth.Keys{HMAC: secret}},
		{"HS512", secret, jwtauth.Keys{HMAC: secret}},
		{"RS256", rsaKey, jwtauth.Keys{Public: &rsaKey.PublicKey}},
		{"ES256", ecKey, jwtauth.Keys{Public: &ecKey.PublicKey, Audience: "aud1", Issuer: "iss1"}},
	} {
		t.Run(tc.alg, func(t *testing.T) {
			s, err := appauth.NewTokenSigner(tc.alg, tc.sign)
			if err != nil {
				t.Fatal(err)
			}
			v, err := jwtauth.NewVerifier(tc.keys)
			if err != nil {
				t.Fatal(err)
			}
			exp := now.Add(time.Hour)
			conn, err := s.Connection(appauth.ConnectionClaims{Sub: "u1", ExpiresAt: exp, Info: map[string]string{"name": "A"},
				Channels: []string{"news"}, Audience: tc.keys.Audience, Issuer: tc.keys.Issuer}, now)
			if err != nil {
				t.Fatal(err)
			}
			cc, err := v.Connect(conn, now)
			if err != nil {
				t.Fatalf("connection token refused: %v", err)
			}
			if cc.Sub != "u1" || !cc.Expires.Equal(exp) || string(cc.Info) != `{"name":"A"}` || len(cc.Channels) != 1 || cc.Channels[0] != "news" {
				t.Errorf("connection claims %+v", cc)
			}
			sub, err := s.Subscription(appauth.SubscriptionClaims{Sub: "u1", Channel: "$room", Client: "c-1", ExpiresAt: exp,
				Info: json.RawMessage(`{"x": 1}`), Audience: tc.keys.Audience, Issuer: tc.keys.Issuer}, now)
			if err != nil {
				t.Fatal(err)
			}
			sc, err := v.Subscribe(sub, now)
			if err != nil {
				t.Fatalf("subscription token refused: %v", err)
			}
			if sc.Sub != "u1" || sc.Channel != "$room" || sc.Client != "c-1" || !sc.Expires.Equal(exp) || string(sc.Info) != `{"x":1}` {
				t.Errorf("subscription claims %+v", sc)
			}
			if _, err := v.Subscribe(sub, exp); !errors.Is(err, jwtauth.ErrExpired) {
				t.Errorf("at exp: %v, want ErrExpired", err)
			}
		})
	}
}

func TestTokenSignerRefusesMismatchedKeys(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	for _, tc := range []struct {
		alg string
		key any
	}{
		{"HS256", []byte{}}, {"HS256", "string"}, {"RS256", []byte("x")}, {"ES256", rsaKey}, {"ES256", p384}, {"none", nil}, {"EdDSA", nil},
	} {
		if _, err := appauth.NewTokenSigner(tc.alg, tc.key); err == nil {
			t.Errorf("%s with %T accepted", tc.alg, tc.key)
		}
	}
}

func TestParsePrivateKey(t *testing.T) {
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(ecKey)
	pk, err := appauth.ParsePrivateKey(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := pk.(*ecdsa.PrivateKey); !ok {
		t.Errorf("got %T", pk)
	}
	sec1, _ := x509.MarshalECPrivateKey(ecKey)
	if _, err := appauth.ParsePrivateKey(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})); err != nil {
		t.Error(err)
	}
	if _, err := appauth.ParsePrivateKey([]byte("not pem")); err == nil {
		t.Error("garbage accepted")
	}
}

// Centrifuge's batch: one subscription token per allowed channel, bound to
// the request's client id and the decision's user, verified by Herald.
func TestCentrifugeBatch(t *testing.T) {
	secret := []byte("jwt-secret")
	signer, _ := appauth.NewTokenSigner("HS256", secret)
	now := time.Unix(1_800_000_000, 0)
	a, err := appauth.New(appauth.Options{Key: "k", Secret: "s", Tokens: signer, Now: func() time.Time { return now },
		Decide: func(r *appauth.Request) appauth.Decision {
			if r.Channel == "$denied" {
				return appauth.Deny()
			}
			if r.ClientID != "c-1" || r.SocketID != "" {
				t.Errorf("decision saw client %q socket %q", r.ClientID, r.SocketID)
			}
			return appauth.AllowUser("u1", map[string]int{"n": 1})
		}})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("POST", "/centrifuge/subscribe", strings.NewReader(`{"client":"c-1","channels":["$a","$denied","news:b"]}`))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	a.ChannelHandler().ServeHTTP(w, r)
	if w.Code != 200 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	var out map[string]struct {
		Status int             `json:"status"`
		Token  string          `json:"token"`
		Info   json.RawMessage `json:"info"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	v, _ := jwtauth.NewVerifier(jwtauth.Keys{HMAC: secret})
	for _, ch := range []string{"$a", "news:b"} {
		sc, err := v.Subscribe(out[ch].Token, now)
		if err != nil {
			t.Fatalf("%s: %v", ch, err)
		}
		if sc.Channel != ch || sc.Client != "c-1" || sc.Sub != "u1" || !sc.Expires.Equal(now.Add(time.Hour)) || string(sc.Info) != `{"n":1}` {
			t.Errorf("%s: claims %+v", ch, sc)
		}
		if string(out[ch].Info) != `{"n":1}` {
			t.Errorf("%s: info %s", ch, out[ch].Info)
		}
	}
	if d := out["$denied"]; d.Status != 403 || d.Token != "" {
		t.Errorf("denied: %+v", d)
	}

	for name, body := range map[string]string{
		"no client":     `{"channels":["$a"]}`,
		"empty":         `{"client":"c","channels":[]}`,
		"not strings":   `{"client":"c","channels":[1]}`,
		"control":       `{"client":"c","channels":["a\u0001"]}`,
		"client spaces": `{"client":"a b","channels":["$a"]}`,
		"duplicate":     `{"client":"c","channels":["$a","$a"]}`,
	} {
		r := httptest.NewRequest("POST", "/", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		a.ChannelHandler().ServeHTTP(w, r)
		if w.Code != 400 {
			t.Errorf("%s: %d %s", name, w.Code, w.Body)
		}
	}

	// Without a JWT key the whole request is refused.
	noKey, _ := appauth.New(appauth.Options{Key: "k", Secret: "s", Decide: func(*appauth.Request) appauth.Decision { return appauth.Allow() }})
	r = httptest.NewRequest("POST", "/", strings.NewReader(`{"client":"c","channels":["$a"]}`))
	r.Header.Set("Content-Type", "application/json")
	w = httptest.NewRecorder()
	noKey.ChannelHandler().ServeHTTP(w, r)
	if w.Code != 403 {
		t.Errorf("no JWT key: %d", w.Code)
	}
}

// An app that sets jwt_audience or jwt_issuer (which apps sharing a JWT key
// must) refuses tokens without them: the batch's tokens carry the ones
// configured.
func TestCentrifugeBatchAudienceIssuer(t *testing.T) {
	secret := []byte("jwt-secret")
	signer, _ := appauth.NewTokenSigner("HS256", secret)
	now := time.Unix(1_800_000_000, 0)
	a, err := appauth.New(appauth.Options{Key: "k", Secret: "s", Tokens: signer, Now: func() time.Time { return now },
		SubscriptionAudience: "app-1", SubscriptionIssuer: "backend",
		Decide: func(*appauth.Request) appauth.Decision { return appauth.AllowUser("u1", nil) }})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("POST", "/", strings.NewReader(`{"client":"c-1","channels":["$a"]}`))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	a.ChannelHandler().ServeHTTP(w, r)
	var out map[string]struct{ Token string }
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	v, _ := jwtauth.NewVerifier(jwtauth.Keys{HMAC: secret, Audience: "app-1", Issuer: "backend"})
	if _, err := v.Subscribe(out["$a"].Token, now); err != nil {
		t.Fatal(err)
	}
}
