package jwtauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Vectors of centrifugal/centrifuge-js src/centrifuge.test.ts and
// centrifugal/centrifugo internal/jwtverify/token_verifier_jwt_test.go,
// all HS256 with the secret "secret".
const (
	vecConnectAnon = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpYXQiOjE3MzgwNzg4MjR9.MTb3higWfFW04E9-8wmTFOcf4MEm-rMDQaNKJ1VU_n4"
	vecSubTest1    = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpYXQiOjE3Mzc1MzIzNDgsImNoYW5uZWwiOiJ0ZXN0MSJ9.eqPQxbBtyYxL8Hvbkm-P6aH7chUsSG_EMWe-rTwF_HI"
	vecSubTest2    = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpYXQiOjE3Mzc1MzIzODcsImNoYW5uZWwiOiJ0ZXN0MiJ9.tTJB3uSa8XpEmCvfkmrSKclijofnJ5RkQk6L2SaGtUE"
	vecSubTest3    = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpYXQiOjE3Mzc1MzIzOTgsImNoYW5uZWwiOiJ0ZXN0MyJ9.nyLcMrIot441CszOKska7kQIjo2sEm8pSxV1XWfNCsI"
	vecSubTest4    = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpYXQiOjE3Mzc1MzI0MDksImNoYW5uZWwiOiJ0ZXN0NCJ9.wWAX2AhJX6Ep4HVexQWSVF3-cWytVhzY9Pm7QsMdCsI"
	vecSubTest5    = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpYXQiOjE3Mzc1MzI0MTgsImNoYW5uZWwiOiJ0ZXN0NSJ9.hCSfpHYws5TXLKkN0bW0DU6C-wgEUNuhGaIy8W1sT9o"

	vecValid              = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIyNjk0IiwiaW5mbyI6eyJmaXJzdF9uYW1lIjoiQWxleGFuZGVyIiwibGFzdF9uYW1lIjoiRW1lbGluIn19.m-TaS80RxkAiP9jH_s_h2NrKS_TDuPxJ8-z6gI7UewI"
	vecExpired            = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIyNjk0IiwiaW5mbyI6eyJmaXJzdF9uYW1lIjoiQWxleGFuZGVyIiwibGFzdF9uYW1lIjoiRW1lbGluIn0sImV4cCI6MTU4ODM1MTcwNH0.LTc0p5YlrwJcxXPETrjhm9qyYUBKCR5fSROmfCE4TD8"
	vecNotBefore          = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIyNjk0IiwiaW5mbyI6eyJmaXJzdF9uYW1lIjoiQWxleGFuZGVyIiwibGFzdF9uYW1lIjoiRW1lbGluIn0sImV4cCI6MzE3NjgyMDU3MCwibmJmIjozMTc2ODIwNTYwfQ.gfsQeznFw6g44OEnCTSBW7AkmLy92GBfXL_Bdvzs7vc"
	vecInvalidSignature   = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIyNjk0IiwiaW5mbyI6eyJmaXJzdF9uYW1lIjoiQWxleGFuZGVyIiwibGFzdF9uYW1lIjoiRW1lbGluIn0sImV4cCI6MTU4ODQxOTY5MywibmJmIjoxNTg4NDE4NjkzfQ.05Xj9adbLukdhSJFyiVUEgbxCHTajXuotmalFgYviCo"
	vecArrayAud           = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIyNjk0IiwiaW5mbyI6eyJmaXJzdF9uYW1lIjoiQWxleGFuZGVyIiwibGFzdF9uYW1lIjoiRW1lbGluIn0sImF1ZCI6WyJmb28iLCJiYXIiXX0.iY4pCPEQwstfNmPkLr7r7DrLZDo42q3E9jMc-TefI6g"
	vecStringAud          = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIyNjk0IiwiaW5mbyI6eyJmaXJzdF9uYW1lIjoiQWxleGFuZGVyIiwibGFzdF9uYW1lIjoiRW1lbGluIn0sImF1ZCI6ImZvbyJ9.jym6CG5haHME3ZQbb9jlnV1E0hSwwEjZycBZSygRzO0"
	vecCustomUserClaim    = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJ1c2VyX2lkIjoidGVzdCJ9.Mdh4PGRnqKD-8_cKCJOYKfi9KNLJz2PCKl3qEi0n0-w"
	vecSubCustomUserClaim = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJ1c2VyX2lkIjoidGVzdCIsImNoYW5uZWwiOiJjaGFubmVsIn0.vMA6Ee2eq3d8ApAhbXmVv5LmArbrjFZgU2FUbK93EnQ"
	vecEmptyObject        = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.e30.DMCAvRgzrcf5w0Z879BsqzcrnDFKBY_GN6c3qKOUFtQ"
)

const vecInfo = `{"first_name":"Alexander","last_name":"Emelin"}`

var (
	keysOnce                    sync.Once
	rsaKey, rsaOther            *rsa.PrivateKey
	ecP256, ecP384, ecP521, ec2 *ecdsa.PrivateKey
)

func testKeys(t testing.TB) {
	t.Helper()
	keysOnce.Do(func() {
		must := func(err error) {
			if err != nil {
				panic(err)
			}
		}
		var err error
		rsaKey, err = rsa.GenerateKey(rand.Reader, 2048)
		must(err)
		rsaOther, err = rsa.GenerateKey(rand.Reader, 2048)
		must(err)
		ecP256, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		must(err)
		ecP384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		must(err)
		ecP521, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
		must(err)
		ec2, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		must(err)
	})
}

func pemOf(t testing.TB, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func sign(t testing.TB, m jwt.SigningMethod, key any, c jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(m, c).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func verifier(t testing.TB, k Keys) *Verifier {
	t.Helper()
	v, err := NewVerifier(k)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestVectors(t *testing.T) {
	v := verifier(t, Keys{HMAC: []byte("secret")})
	now := time.Now()

	c, err := v.Connect(vecConnectAnon, now)
	if err != nil || c.Sub != "" || !c.Expires.IsZero() || c.Info != nil || c.Channels != nil {
		t.Errorf("anonymous connect vector: %+v, %v", c, err)
	}
	for i, tok := range []string{vecSubTest1, vecSubTest2, vecSubTest3, vecSubTest4, vecSubTest5} {
		s, err := v.Subscribe(tok, now)
		want := "test" + string(rune('1'+i))
		if err != nil || s.Channel != want || s.Sub != "" || !s.Expires.IsZero() {
			t.Errorf("sub vector %s: %+v, %v", want, s, err)
		}
		// A subscription token is no connection token.
		if _, err := v.Connect(tok, now); !errors.Is(err, ErrInvalid) {
			t.Errorf("sub vector %s as a connection token: %v, want ErrInvalid", want, err)
		}
	}
	c, err = v.Connect(vecValid, now)
	if err != nil || c.Sub != "2694" || string(c.Info) != vecInfo || !c.Expires.IsZero() {
		t.Errorf("jwtValid: %+v (info %s), %v", c, c.Info, err)
	}
	if _, err := v.Connect(vecExpired, now); !errors.Is(err, ErrExpired) {
		t.Errorf("jwtExpired: %v, want ErrExpired", err)
	}
	// Not valid yet: answered as expired, as Centrifugo does, so that the
	// client fetches a fresh token and tries again (a backend whose clock
	// is ahead signs nbf in Herald's future) instead of giving up.
	if _, err := v.Connect(vecNotBefore, now); !errors.Is(err, ErrExpired) {
		t.Errorf("jwtNotBefore now: %v, want ErrExpired", err)
	}
	c, err = v.Connect(vecNotBefore, time.Unix(3176820565, 0))
	if err != nil || !c.Expires.Equal(time.Unix(3176820570, 0)) {
		t.Errorf("jwtNotBefore between nbf and exp: %+v, %v", c, err)
	}
	if _, err := v.Connect(vecNotBefore, time.Unix(3176820560, 0)); err != nil {
		t.Errorf("jwtNotBefore at nbf: %v, want valid", err)
	}
	// No leeway: expired from the second exp names.
	if _, err := v.Connect(vecNotBefore, time.Unix(3176820570, 0)); !errors.Is(err, ErrExpired) {
		t.Errorf("jwtNotBefore at exp: %v, want ErrExpired", err)
	}
	if _, err := v.Connect(vecNotBefore, time.Unix(3176820569, 999e6)); err != nil {
		t.Errorf("jwtNotBefore just before exp: %v, want valid", err)
	}
	// Expired and badly signed: the signature decides.
	_, err = v.Connect(vecInvalidSignature, now)
	if !errors.Is(err, ErrInvalid) || errors.Is(err, ErrExpired) {
		t.Errorf("jwtInvalidSignature: %v, want ErrInvalid only", err)
	}
	if c, err := v.Connect(vecArrayAud, now); err != nil || c.Sub != "2694" {
		t.Errorf("jwtArrayAud without audience configured: %v", err)
	}
	if c, err := v.Connect(vecCustomUserClaim, now); err != nil || c.Sub != "" {
		t.Errorf("jwtValidCustomUserClaim: %+v, %v (user_id is not sub)", c, err)
	}
	if s, err := v.Subscribe(vecSubCustomUserClaim, now); err != nil || s.Channel != "channel" || s.Sub != "" {
		t.Errorf("subJWTValidCustomUserClaim: %+v, %v", s, err)
	}
	if c, err := v.Connect(vecEmptyObject, now); err != nil || c.Sub != "" {
		t.Errorf("emptyObjectClaimsJWT: %+v, %v", c, err)
	}
	if _, err := v.Subscribe(vecEmptyObject, now); !errors.Is(err, ErrInvalid) {
		t.Errorf("emptyObjectClaimsJWT as a sub token: %v, want ErrInvalid (no channel)", err)
	}
	if _, err := v.Subscribe(vecValid, now); !errors.Is(err, ErrInvalid) {
		t.Errorf("connection token as a sub token: %v, want ErrInvalid", err)
	}

	// Another secret verifies none of them.
	other := verifier(t, Keys{HMAC: []byte("secret2")})
	for _, tok := range []string{vecConnectAnon, vecValid, vecExpired, vecArrayAud, vecEmptyObject} {
		if _, err := other.Connect(tok, now); !errors.Is(err, ErrInvalid) {
			t.Errorf("vector with another secret: %v, want ErrInvalid", err)
		}
	}
	if _, err := other.Subscribe(vecSubTest1, now); !errors.Is(err, ErrInvalid) {
		t.Errorf("sub vector with another secret: %v, want ErrInvalid", err)
	}
}

func TestAudienceIssuer(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		name     string
		aud, iss string
		token    string
		ok       bool
	}{
		{"array aud, one matches", "bar", "", vecArrayAud, true},
		{"array aud, none matches", "baz", "", vecArrayAud, false},
		{"string aud matches", "foo", "", vecStringAud, true},
		{"string aud differs", "bar", "", vecStringAud, false},
		{"aud missing", "foo", "", vecValid, false},
		{"iss missing", "", "herald", vecValid, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := verifier(t, Keys{HMAC: []byte("secret"), Audience: tc.aud, Issuer: tc.iss})
			_, err := v.Connect(tc.token, now)
			if tc.ok && err != nil || !tc.ok && !errors.Is(err, ErrInvalid) {
				t.Errorf("err = %v, want ok=%v", err, tc.ok)
			}
		})
	}
	v := verifier(t, Keys{HMAC: []byte("k"), Issuer: "herald", Audience: "app"})
	good := sign(t, jwt.SigningMethodHS256, []byte("k"), jwt.MapClaims{"sub": "u", "iss": "herald", "aud": "app"})
	if _, err := v.Connect(good, now); err != nil {
		t.Errorf("right iss and aud: %v", err)
	}
	bad := sign(t, jwt.SigningMethodHS256, []byte("k"), jwt.MapClaims{"sub": "u", "iss": "other", "aud": "app"})
	if _, err := v.Connect(bad, now); !errors.Is(err, ErrInvalid) {
		t.Errorf("wrong iss: %v, want ErrInvalid", err)
	}
	// Expired with a wrong issuer is invalid, not merely expired.
	badExp := sign(t, jwt.SigningMethodHS256, []byte("k"), jwt.MapClaims{"sub": "u", "iss": "other", "aud": "app", "exp": now.Add(-time.Hour).Unix()})
	if _, err := v.Connect(badExp, now); !errors.Is(err, ErrInvalid) || errors.Is(err, ErrExpired) {
		t.Errorf("expired with wrong iss: %v, want ErrInvalid", err)
	}
	// Expired without the aud or iss the app requires is invalid too: the
	// parser reports a required claim that is absent as missing, not as
	// wrong, and that must not pass for mere expiry.
	for name, c := range map[string]jwt.MapClaims{
		"no aud":    {"sub": "u", "iss": "herald"},
		"empty aud": {"sub": "u", "iss": "herald", "aud": ""},
		"no iss":    {"sub": "u", "aud": "app"},
	} {
		c["exp"] = now.Add(-time.Hour).Unix()
		tok := sign(t, jwt.SigningMethodHS256, []byte("k"), c)
		if _, err := v.Connect(tok, now); !errors.Is(err, ErrInvalid) || errors.Is(err, ErrExpired) {
			t.Errorf("expired, %s: %v, want ErrInvalid", name, err)
		}
		c["channel"] = "c"
		tok = sign(t, jwt.SigningMethodHS256, []byte("k"), c)
		if _, err := v.Subscribe(tok, now); !errors.Is(err, ErrInvalid) || errors.Is(err, ErrExpired) {
			t.Errorf("expired sub token, %s: %v, want ErrInvalid", name, err)
		}
	}
	// Expired with the right aud and iss is expired.
	okExp := sign(t, jwt.SigningMethodHS256, []byte("k"), jwt.MapClaims{"sub": "u", "iss": "herald", "aud": "app", "exp": now.Add(-time.Hour).Unix()})
	if _, err := v.Connect(okExp, now); !errors.Is(err, ErrExpired) {
		t.Errorf("expired with right iss and aud: %v, want ErrExpired", err)
	}
	if _, err := v.Subscribe(sign(t, jwt.SigningMethodHS256, []byte("k"), jwt.MapClaims{"channel": "c", "iss": "herald", "aud": "nope"}), now); !errors.Is(err, ErrInvalid) {
		t.Errorf("sub token with wrong aud: %v, want ErrInvalid", err)
	}
}

// TestAlgorithms signs with every algorithm and key and checks each
// verifier accepts exactly its own.
func TestAlgorithms(t *testing.T) {
	testKeys(t)
	hmac := []byte("hmac-secret")
	claims := jwt.MapClaims{"sub": "u1"}
	type signed struct {
		name string
		tok  string
	}
	toks := []signed{
		{"HS256", sign(t, jwt.SigningMethodHS256, hmac, claims)},
		{"HS384", sign(t, jwt.SigningMethodHS384, hmac, claims)},
		{"HS512", sign(t, jwt.SigningMethodHS512, hmac, claims)},
		{"RS256", sign(t, jwt.SigningMethodRS256, rsaKey, claims)},
		{"RS384", sign(t, jwt.SigningMethodRS384, rsaKey, claims)},
		{"RS512", sign(t, jwt.SigningMethodRS512, rsaKey, claims)},
		{"PS256", sign(t, jwt.SigningMethodPS256, rsaKey, claims)},
		{"ES256", sign(t, jwt.SigningMethodES256, ecP256, claims)},
		{"ES384", sign(t, jwt.SigningMethodES384, ecP384, claims)},
		{"ES512", sign(t, jwt.SigningMethodES512, ecP521, claims)},
	}
	for _, tc := range []struct {
		name   string
		keys   Keys
		accept []string
	}{
		{"hmac", Keys{HMAC: hmac}, []string{"HS256", "HS384", "HS512"}},
		{"rsa", Keys{Public: &rsaKey.PublicKey}, []string{"RS256", "RS384", "RS512"}},
		{"hmac+rsa", Keys{HMAC: hmac, Public: &rsaKey.PublicKey}, []string{"HS256", "HS384", "HS512", "RS256", "RS384", "RS512"}},
		{"p256", Keys{Public: &ecP256.PublicKey}, []string{"ES256"}},
		{"p384", Keys{Public: &ecP384.PublicKey}, []string{"ES384"}},
		{"p521", Keys{Public: &ecP521.PublicKey}, []string{"ES512"}},
		{"other rsa", Keys{Public: &rsaOther.PublicKey}, nil},
		{"other p256", Keys{Public: &ec2.PublicKey}, nil},
		{"other hmac", Keys{HMAC: []byte("another")}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := verifier(t, tc.keys)
			for _, s := range toks {
				_, err := v.Connect(s.tok, time.Now())
				want := false
				for _, a := range tc.accept {
					want = want || a == s.name
				}
				if want && err != nil {
					t.Errorf("%s refused: %v", s.name, err)
				}
				if !want && !errors.Is(err, ErrInvalid) {
					t.Errorf("%s: err = %v, want ErrInvalid", s.name, err)
				}
			}
		})
	}
}

// TestAlgorithmConfusion is the classic attack on an app with an RSA key:
// an HS256 token whose HMAC secret is the public key's PEM, which anyone
// may know.
func TestAlgorithmConfusion(t *testing.T) {
	testKeys(t)
	pub := pemOf(t, &rsaKey.PublicKey)
	der, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	claims := jwt.MapClaims{"sub": "admin", "channel": "$secret"}
	forged := []string{
		sign(t, jwt.SigningMethodHS256, pub, claims),
		sign(t, jwt.SigningMethodHS512, pub, claims),
		sign(t, jwt.SigningMethodHS256, []byte(strings.TrimSpace(string(pub))), claims),
		sign(t, jwt.SigningMethodHS256, der, claims),
	}
	for _, k := range []Keys{
		{Public: &rsaKey.PublicKey},
		{HMAC: []byte("the-app-secret"), Public: &rsaKey.PublicKey},
	} {
		v := verifier(t, k)
		for i, tok := range forged {
			if _, err := v.Subscribe(tok, time.Now()); !errors.Is(err, ErrInvalid) {
				t.Errorf("keys with hmac=%q, forged %d: %v, want ErrInvalid", k.HMAC, i, err)
			}
			if _, err := v.Connect(tok, time.Now()); !errors.Is(err, ErrInvalid) {
				t.Errorf("keys with hmac=%q, forged %d as connect: %v", k.HMAC, i, err)
			}
		}
		// And the RSA-signed one is accepted, so the refusal is the forgery's.
		if _, err := v.Subscribe(sign(t, jwt.SigningMethodRS256, rsaKey, claims), time.Now()); err != nil {
			t.Errorf("RS256 refused: %v", err)
		}
	}
	// Same idea with an ECDSA key.
	v := verifier(t, Keys{Public: &ecP256.PublicKey})
	if _, err := v.Connect(sign(t, jwt.SigningMethodHS256, pemOf(t, &ecP256.PublicKey), claims), time.Now()); !errors.Is(err, ErrInvalid) {
		t.Errorf("HS256 with the EC PEM: %v, want ErrInvalid", err)
	}
}

func TestForged(t *testing.T) {
	testKeys(t)
	secret := []byte("secret")
	v := verifier(t, Keys{HMAC: secret, Public: &ecP256.PublicKey})
	good := sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "u1", "channel": "private-a"})
	parts := strings.Split(good, ".")
	es256 := sign(t, jwt.SigningMethodES256, ecP256, jwt.MapClaims{"sub": "u1", "channel": "private-a"})
	esParts := strings.Split(es256, ".")
	for _, tc := range []struct{ name, tok string }{
		{"alg none, no signature", b64(`{"alg":"none","typ":"JWT"}`) + "." + parts[1] + "."},
		{"alg none, old signature", b64(`{"alg":"none","typ":"JWT"}`) + "." + parts[1] + "." + parts[2]},
		{"alg None", b64(`{"alg":"None"}`) + "." + parts[1] + "."},
		{"alg missing", b64(`{"typ":"JWT"}`) + "." + parts[1] + "." + parts[2]},
		{"alg HS384 on an HS256 signature", b64(`{"alg":"HS384"}`) + "." + parts[1] + "." + parts[2]},
		{"tampered payload", parts[0] + "." + b64(`{"sub":"admin","channel":"private-a"}`) + "." + parts[2]},
		{"truncated signature", parts[0] + "." + parts[1] + "." + parts[2][:10]},
		{"no signature", parts[0] + "." + parts[1] + "."},
		{"two parts", parts[0] + "." + parts[1]},
		{"four parts", good + ".x"},
		{"empty", ""},
		{"garbage", "not a token"},
		{"payload not JSON", parts[0] + "." + b64("nope") + "." + parts[2]},
		{"ES256 header changed to ES384", b64(`{"alg":"ES384","typ":"JWT"}`) + "." + esParts[1] + "." + esParts[2]},
		{"ES256 from another key", sign(t, jwt.SigningMethodES256, ec2, jwt.MapClaims{"channel": "private-a"})},
		{"ES384 with a P-384 key, app has P-256", sign(t, jwt.SigningMethodES384, ecP384, jwt.MapClaims{"channel": "private-a"})},
		{"RS256 with no RSA key", sign(t, jwt.SigningMethodRS256, rsaKey, jwt.MapClaims{"channel": "private-a"})},
		{"numeric sub", sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": 42, "channel": "private-a"})},
		{"string exp", sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"exp": "tomorrow", "channel": "private-a"})},
		{"channel not a string", sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"channel": 1})},
		{"empty channel", sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"channel": ""})},
		{"b64info not base64", sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"channel": "private-a", "b64info": "%%%"})},
		{"b64info not JSON", sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"channel": "private-a", "b64info": base64.StdEncoding.EncodeToString([]byte{0xff, 1})})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if s, err := v.Subscribe(tc.tok, time.Now()); !errors.Is(err, ErrInvalid) {
				t.Errorf("Subscribe: %+v, %v, want ErrInvalid", s, err)
			}
		})
	}
	if _, err := v.Subscribe(good, time.Now()); err != nil {
		t.Errorf("the untampered token: %v", err)
	}
	if _, err := v.Subscribe(es256, time.Now()); err != nil {
		t.Errorf("the untampered ES256 token: %v", err)
	}
}

func TestClaims(t *testing.T) {
	secret := []byte("s")
	v := verifier(t, Keys{HMAC: secret})
	now := time.Unix(1_800_000_000, 0)
	tok := func(c jwt.MapClaims) string { return sign(t, jwt.SigningMethodHS256, secret, c) }

	c, err := v.Connect(tok(jwt.MapClaims{"sub": "42", "exp": now.Unix() + 60, "info": map[string]any{"name": "A"}, "channels": []string{"news", "$x"}}), now)
	if err != nil || c.Sub != "42" || !c.Expires.Equal(now.Add(time.Minute)) || string(c.Info) != `{"name":"A"}` || strings.Join(c.Channels, ",") != "news,$x" {
		t.Errorf("connect: %+v (info %s), %v", c, c.Info, err)
	}
	// subs takes precedence over channels.
	c, err = v.Connect(tok(jwt.MapClaims{"sub": "42", "channels": []string{"a"}, "subs": map[string]any{"z": map[string]any{}, "b": map[string]any{"info": 1}}}), now)
	if err != nil || strings.Join(c.Channels, ",") != "b,z" {
		t.Errorf("subs: %+v, %v", c, err)
	}
	// b64info over info.
	c, err = v.Connect(tok(jwt.MapClaims{"info": "plain", "b64info": base64.StdEncoding.EncodeToString([]byte(`{"bin": true}`))}), now)
	if err != nil || string(c.Info) != `{"bin":true}` {
		t.Errorf("b64info: %s, %v", c.Info, err)
	}
	c, err = v.Connect(tok(jwt.MapClaims{"info": nil}), now)
	if err != nil || c.Info != nil {
		t.Errorf("null info: %s, %v", c.Info, err)
	}
	// expire_at overrides exp; 0 is never; exp still decides validity.
	c, err = v.Connect(tok(jwt.MapClaims{"exp": now.Unix() + 60, "expire_at": now.Unix() + 3600}), now)
	if err != nil || !c.Expires.Equal(now.Add(time.Hour)) {
		t.Errorf("expire_at: %+v, %v", c, err)
	}
	c, err = v.Connect(tok(jwt.MapClaims{"exp": now.Unix() + 60, "expire_at": 0}), now)
	if err != nil || !c.Expires.IsZero() {
		t.Errorf("expire_at 0: %+v, %v", c, err)
	}
	if _, err := v.Connect(tok(jwt.MapClaims{"exp": now.Unix() - 1, "expire_at": 0}), now); !errors.Is(err, ErrExpired) {
		t.Errorf("expired exp with expire_at 0: %v, want ErrExpired", err)
	}
	if _, err := v.Connect(tok(jwt.MapClaims{"channel": "x"}), now); !errors.Is(err, ErrInvalid) {
		t.Errorf("channel in a connection token: %v, want ErrInvalid", err)
	}

	s, err := v.Subscribe(tok(jwt.MapClaims{"sub": "42", "channel": "presence-room", "client": "c1", "exp": now.Unix() + 10, "info": map[string]any{"role": "x"}}), now)
	if err != nil || s.Sub != "42" || s.Channel != "presence-room" || s.Client != "c1" || !s.Expires.Equal(now.Add(10*time.Second)) || string(s.Info) != `{"role":"x"}` {
		t.Errorf("subscribe: %+v (info %s), %v", s, s.Info, err)
	}
	s, err = v.Subscribe(tok(jwt.MapClaims{"channel": "c", "exp": now.Unix() + 10, "expire_at": 0}), now)
	if err != nil || !s.Expires.IsZero() {
		t.Errorf("one-time sub token: %+v, %v", s, err)
	}
	if _, err := v.Subscribe(tok(jwt.MapClaims{"channel": "c", "exp": now.Unix()}), now); !errors.Is(err, ErrExpired) {
		t.Errorf("sub token at exp: %v, want ErrExpired", err)
	}
}

func TestNewVerifier(t *testing.T) {
	testKeys(t)
	ed := struct{}{}
	for _, tc := range []struct {
		name string
		k    Keys
	}{
		{"no key", Keys{}},
		{"empty hmac", Keys{HMAC: []byte{}}},
		{"private key", Keys{Public: rsaKey}},
		{"other type", Keys{Public: ed}},
		{"nil rsa", Keys{Public: (*rsa.PublicKey)(nil)}},
		{"p224", Keys{Public: &ecdsa.PublicKey{Curve: elliptic.P224()}}},
	} {
		if _, err := NewVerifier(tc.k); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
	v := verifier(t, Keys{HMAC: []byte("x"), Public: &ecP384.PublicKey})
	if got := strings.Join(v.Methods(), ","); got != "HS256,HS384,HS512,ES384" {
		t.Errorf("methods %s", got)
	}
}

// FuzzVerify: no token string panics either verifier, and none verifies
// without the key (the fuzzer never sees the keys, generated per run).
func FuzzVerify(f *testing.F) {
	testKeys(f)
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{
		vecConnectAnon, vecSubTest1, vecValid, vecExpired, vecNotBefore, vecInvalidSignature,
		vecArrayAud, vecEmptyObject, "", ".", "..", "a.b.c",
		b64(`{"alg":"none"}`) + "." + b64(`{"channel":"x"}`) + ".",
		b64(`{"alg":"HS256"}`) + "." + b64(`{"channel":"x","exp":1e400}`) + ".AAAA",
		b64(`{"alg":"RS256"}`) + "." + b64(`{"sub":"u"}`) + ".",
		b64(`{"alg":"ES256"}`) + "." + b64(`{"sub":"u"}`) + "." + b64(strings.Repeat("\x00", 64)),
		sign(f, jwt.SigningMethodHS256, pemOf(f, &rsaKey.PublicKey), jwt.MapClaims{"channel": "x"}),
	} {
		f.Add(s)
	}
	verifiers := []*Verifier{
		verifier(f, Keys{HMAC: secret, Public: &rsaKey.PublicKey, Audience: "a", Issuer: "i"}),
		verifier(f, Keys{HMAC: secret, Public: &ecP256.PublicKey}),
		verifier(f, Keys{Public: &rsaKey.PublicKey}),
	}
	now := time.Unix(1_800_000_000, 0)
	f.Fuzz(func(t *testing.T, tok string) {
		for _, v := range verifiers {
			if c, err := v.Connect(tok, now); err == nil {
				t.Fatalf("connect verified without the key: %+v", c)
			} else if !errors.Is(err, ErrInvalid) || errors.Is(err, ErrExpired) {
				t.Fatalf("connect: %v, want ErrInvalid only for a token not validly signed", err)
			}
			if c, err := v.Subscribe(tok, now); err == nil {
				t.Fatalf("subscribe verified without the key: %+v", c)
			} else if errors.Is(err, ErrExpired) {
				t.Fatalf("expired reported for a token that is not validly signed: %v", err)
			}
		}
	})
}

// Costly tells the tokens that may take a public-key verification from
// those checked with the HMAC secret, reading the header as the parser
// does, so that no token it calls cheap gets a public-key check.
func TestCostly(t *testing.T) {
	testKeys(t)
	hmacOnly := verifier(t, Keys{HMAC: []byte("s")})
	both := verifier(t, Keys{HMAC: []byte("s"), Public: &ecP521.PublicKey})
	hs := sign(t, jwt.SigningMethodHS256, []byte("s"), jwt.MapClaims{"sub": "u"})
	es := sign(t, jwt.SigningMethodES512, ecP521, jwt.MapClaims{"sub": "u"})
	rs := sign(t, jwt.SigningMethodRS256, rsaKey, jwt.MapClaims{"sub": "u"})
	sig := "." + b64(`{}`) + "." + b64("sig")
	for _, tc := range []struct {
		name  string
		v     *Verifier
		token string
		want  bool
	}{
		{"HS256, no public key", hmacOnly, hs, false},
		{"ES512, no public key", hmacOnly, es, false},
		{"HS256 with a public key", both, hs, false},
		{"ES512 with a public key", both, es, true},
		{"RS256 with a public key", both, rs, true},
		{"header not base64", both, "!!" + sig, true},
		{"header not JSON", both, b64("nope") + sig, true},
		{"no alg", both, b64(`{"typ":"JWT"}`) + sig, true},
		{"alg none", both, b64(`{"alg":"none"}`) + sig, true},
		// The parser reads the header into a map: "alg" is the key that
		// counts, the last one when repeated, whatever other case says.
		{"ALG HS256, alg ES512", both, b64(`{"ALG":"HS256","alg":"ES512"}`) + sig, true},
		{"alg ES512, ALG HS256", both, b64(`{"alg":"ES512","ALG":"HS256"}`) + sig, true},
		{"alg HS256 then ES512", both, b64(`{"alg":"HS256","alg":"ES512"}`) + sig, true},
		{"alg ES512 then HS256", both, b64(`{"alg":"ES512","alg":"HS256"}`) + sig, false},
	} {
		if got := tc.v.Costly(tc.token); got != tc.want {
			t.Errorf("%s: Costly = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// The headers Costly reads without allocating get the answer of the full
// decoding; the others are left to it.
func TestPlainHeader(t *testing.T) {
	for _, tc := range []struct {
		header string
		plain  bool
	}{
		{`{"alg":"HS256","typ":"JWT"}`, true},
		{`{"typ":"JWT","alg":"HS512"}`, true},
		{`{"alg":"ES512","typ":"JWT","kid":"k1"}`, true},
		{` { "alg" : "HS256" , "typ" : "JWT" } ` + "\r\n\t", true},
		{`{}`, true},
		{` {  } `, true},
		{`{"alg":"HS"}`, true},
		{`{"alg":"H"}`, true},
		{`{"alg":""}`, true},
		{`{"ALG":"HS256","alg":"ES512"}`, true},
		{`{"alg":"HS256","alg":"ES512"}`, true},
		{`{"alg":"ES512","alg":"HS256"}`, true},
		{"{\"alg\":\"HS\xff\xfe\"}", true},
		{"{\"al\xffg\":\"HS256\"}", true},
		{"{\"alg\":\"\xffHS256\"}", true},
		{`{"alg":"HS256"`, false},
		{`{"alg":"HS256",}`, false},
		{`{"alg":"HS256"}x`, false},
		{`{"alg":"HS256"}{}`, false},
		{`{"alg" "HS256"}`, false},
		{`{"alg":"HS256" "typ":"JWT"}`, false},
		{`{,}`, false},
		{`{"\u0061lg":"HS256"}`, false},
		{`{"alg":"H\u0053256"}`, false},
		{`{"alg":"HS\n256"}`, false},
		{`{"alg":256}`, false},
		{`{"alg":null}`, false},
		{`{"alg":"HS256","x":{"alg":"ES512"}}`, false},
		{`{"alg":"HS256","x":["a"]}`, false},
		{`["alg","HS256"]`, false},
		{`"alg"`, false},
		{``, false},
		{`{"alg":"HS256","pad":"` + strings.Repeat("x", maxPlainHeader) + `"}`, false},
	} {
		seg := b64(tc.header)
		hmac, ok := plainHeaderHMAC(seg)
		if ok != tc.plain {
			t.Errorf("%q: read without allocating %v, want %v", tc.header, ok, tc.plain)
		}
		if ok && !hmac != costlyHeader(seg) {
			t.Errorf("%q: costly %v, the full decoding says %v", tc.header, !hmac, costlyHeader(seg))
		}
	}
	// Segments the decoder refuses, or whose header does not fit.
	for _, seg := range []string{"!!", b64(`{"alg":"HS256"}`) + "=", strings.Repeat("e", 400)} {
		if _, ok := plainHeaderHMAC(seg); ok {
			t.Errorf("segment %q read without allocating", seg)
		}
	}
}

// Telling an HMAC token from a public-key one costs no allocation: the
// Pusher front end asks for every JWT channel auth, on the loop.
func TestCostlyAllocs(t *testing.T) {
	testKeys(t)
	both := verifier(t, Keys{HMAC: []byte("s"), Public: &ecP521.PublicKey})
	hs := sign(t, jwt.SigningMethodHS256, []byte("s"), jwt.MapClaims{"sub": "u", "channel": "private-a"})
	es := sign(t, jwt.SigningMethodES512, ecP521, jwt.MapClaims{"sub": "u"})
	for _, tok := range []string{hs, es} {
		if n := testing.AllocsPerRun(100, func() { both.Costly(tok) }); n != 0 {
			t.Errorf("Costly allocates %v times for %.20s…", n, tok)
		}
	}
}

// A token used before its nbf is answered as expired, as Centrifugo
// does: a fresh token, fetched a moment later, is valid (a backend whose
// clock runs ahead of Herald's signs nbf in Herald's future), whereas an
// invalid token ends the client for good. Like an expired token, one that
// also fails another check is invalid.
func TestNotBefore(t *testing.T) {
	now := time.Now()
	v := verifier(t, Keys{HMAC: []byte("k"), Audience: "app"})
	early := jwt.MapClaims{"sub": "u", "aud": "app", "nbf": now.Add(2 * time.Second).Unix()}
	if _, err := v.Connect(sign(t, jwt.SigningMethodHS256, []byte("k"), early), now); !errors.Is(err, ErrExpired) {
		t.Errorf("connection token before nbf: %v, want ErrExpired", err)
	}
	early["channel"] = "c"
	if _, err := v.Subscribe(sign(t, jwt.SigningMethodHS256, []byte("k"), early), now); !errors.Is(err, ErrExpired) {
		t.Errorf("subscription token before nbf: %v, want ErrExpired", err)
	}
	early["aud"] = "other"
	if _, err := v.Subscribe(sign(t, jwt.SigningMethodHS256, []byte("k"), early), now); !errors.Is(err, ErrInvalid) || errors.Is(err, ErrExpired) {
		t.Errorf("before nbf with a wrong aud: %v, want ErrInvalid", err)
	}
	early["aud"] = "app"
	if _, err := v.Subscribe(sign(t, jwt.SigningMethodHS256, []byte("other"), early), now); !errors.Is(err, ErrInvalid) {
		t.Errorf("before nbf, badly signed: %v, want ErrInvalid", err)
	}
}
