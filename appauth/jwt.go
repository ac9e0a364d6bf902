package appauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TokenSigner mints the JSON Web Tokens of Centrifugo clients, connection and
// subscription tokens, with the claims Herald (and Centrifugo) verify: sub,
// exp, iat, aud, iss, info, channels (connection) and channel, client
// (subscription). It is safe for concurrent use.
type TokenSigner struct {
	method jwt.SigningMethod
	key    any
}

// NewTokenSigner returns a signer for alg with key: HS256, HS384 or HS512
// with a []byte secret (Herald's app jwt_secret, or the app secret when that
// is unset); RS256, RS384 or RS512 with an *rsa.PrivateKey; ES256, ES384 or
// ES512 with an *ecdsa.PrivateKey on the matching curve (P-256, P-384,
// P-521). Herald verifies it with the public half, jwt_public_key.
func NewTokenSigner(alg string, key any) (*TokenSigner, error) {
	m := jwt.GetSigningMethod(alg)
	switch m := m.(type) {
	case *jwt.SigningMethodHMAC:
		k, ok := key.([]byte)
		if !ok || len(k) == 0 {
			return nil, fmt.Errorf("appauth: %s needs a non-empty []byte secret", alg)
		}
	case *jwt.SigningMethodRSA:
		if k, ok := key.(*rsa.PrivateKey); !ok || k == nil {
			return nil, fmt.Errorf("appauth: %s needs an RSA private key, not %T", alg, key)
		}
	case *jwt.SigningMethodECDSA:
		k, ok := key.(*ecdsa.PrivateKey)
		if !ok || k == nil {
			return nil, fmt.Errorf("appauth: %s needs an ECDSA private key, not %T", alg, key)
		}
		if k.Curve.Params().BitSize != m.CurveBits {
			return nil, fmt.Errorf("appauth: %s needs a key on %s, not %s", alg, curveFor(m.CurveBits), k.Curve.Params().Name)
		}
	default:
		return nil, fmt.Errorf("appauth: algorithm %q is not HS256/384/512, RS256/384/512 or ES256/384/512", alg)
	}
	return &TokenSigner{method: m, key: key}, nil
}

func curveFor(bits int) string {
	switch bits {
	case 256:
		return elliptic.P256().Params().Name
	case 384:
		return elliptic.P384().Params().Name
	}
	return elliptic.P521().Params().Name
}

// Alg returns the signing algorithm.
func (s *TokenSigner) Alg() string { return s.method.Alg() }

// ConnectionClaims are what a connection token says.
type ConnectionClaims struct {
	// Sub is the user id; "" connects anonymously.
	Sub string
	// ExpiresAt is exp; zero: the token never expires.
	ExpiresAt time.Time
	// Info is the connection info, any JSON value (a json.RawMessage is
	// used as it is); nil: none.
	Info any
	// Channels are server-side subscriptions.
	Channels []string
	// Audience and Issuer, when set, become aud and iss.
	Audience, Issuer string
}

// SubscriptionClaims are what a subscription token says.
type SubscriptionClaims struct {
	// Sub must be the connection's user ("" for an anonymous connection).
	Sub string
	// Channel is the channel the token lets the user subscribe to.
	Channel string
	// Client, when set, binds the token to one connection's client id.
	Client string
	// ExpiresAt is exp; zero: never.
	ExpiresAt time.Time
	// Info is the channel info (presence), any JSON value; nil: none.
	Info any
	// Audience and Issuer, when set, become aud and iss.
	Audience, Issuer string
}

type tokenClaims struct {
	jwt.RegisteredClaims
	Info     json.RawMessage `json:"info,omitempty"`
	Channels []string        `json:"channels,omitempty"`
	Channel  string          `json:"channel,omitempty"`
	Client   string          `json:"client,omitempty"`
}

// Connection mints a connection token issued at now.
func (s *TokenSigner) Connection(c ConnectionClaims, now time.Time) (string, error) {
	tc, err := registered(c.Sub, c.ExpiresAt, c.Audience, c.Issuer, c.Info, now)
	if err != nil {
		return "", err
	}
	tc.Channels = c.Channels
	return s.sign(tc)
}

// Subscription mints a subscription token issued at now.
func (s *TokenSigner) Subscription(c SubscriptionClaims, now time.Time) (string, error) {
	if c.Channel == "" {
		return "", errors.New("appauth: a subscription token needs a channel")
	}
	tc, err := registered(c.Sub, c.ExpiresAt, c.Audience, c.Issuer, c.Info, now)
	if err != nil {
		return "", err
	}
	tc.Channel, tc.Client = c.Channel, c.Client
	return s.sign(tc)
}

func registered(sub string, exp time.Time, aud, iss string, info any, now time.Time) (*tokenClaims, error) {
	tc := &tokenClaims{RegisteredClaims: jwt.RegisteredClaims{Subject: sub, Issuer: iss, IssuedAt: jwt.NewNumericDate(now)}}
	if !exp.IsZero() {
		tc.ExpiresAt = jwt.NewNumericDate(exp)
	}
	if aud != "" {
		tc.Audience = jwt.ClaimStrings{aud}
	}
	if info != nil {
		b, err := marshal(info)
		if err != nil {
			return nil, fmt.Errorf("appauth: info: %w", err)
		}
		if b != "null" {
			tc.Info = json.RawMessage(b)
		}
	}
	return tc, nil
}

func (s *TokenSigner) sign(c *tokenClaims) (string, error) {
	t, err := jwt.NewWithClaims(s.method, c).SignedString(s.key)
	if err != nil {
		return "", fmt.Errorf("appauth: signing a token: %w", err)
	}
	return t, nil
}

// ParsePrivateKey reads a PEM private key (PKCS #8, PKCS #1 RSA or SEC 1
// EC), as written by openssl genpkey or ssh-keygen -m PEM.
func ParsePrivateKey(data []byte) (crypto.Signer, error) {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, errors.New("appauth: no PEM private key found")
		}
		switch b.Type {
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("appauth: PKCS #8 key: %w", err)
			}
			s, ok := k.(crypto.Signer)
			if !ok {
				return nil, fmt.Errorf("appauth: key of type %T cannot sign", k)
			}
			return s, nil
		case "RSA PRIVATE KEY":
			return x509.ParsePKCS1PrivateKey(b.Bytes)
		case "EC PRIVATE KEY":
			return x509.ParseECPrivateKey(b.Bytes)
		}
		// Other blocks (EC PARAMETERS) are skipped.
	}
}
