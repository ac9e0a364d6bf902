// Package jwtauth verifies the JSON Web Tokens of Centrifugo clients:
// connection tokens (sent in connect and refresh) and subscription tokens
// (sent in subscribe and sub_refresh), with the claims Centrifugo v6 defines.
// The Pusher front end also accepts a subscription token in place of a
// key:signature channel auth when an app enables it.
//
// Keys and algorithms. A Verifier holds at most one HMAC secret and one
// public key (RSA or ECDSA). Each key admits only its own algorithms: the
// HMAC secret HS256, HS384 and HS512; an RSA key RS256, RS384 and RS512; an
// ECDSA key only the algorithm of its curve (ES256 for P-256, ES384 for
// P-384, ES512 for P-521). A token whose alg has no configured key is
// invalid, alg "none" is never accepted, and a key is never used for another
// family: an HS256 token is checked with the HMAC secret only, so a token
// "signed" with the public key's PEM bytes as an HMAC secret (the algorithm
// confusion attack) fails like any other bad signature.
//
// Checks. The signature is checked before any claim, so a forged token is
// invalid whatever its claims say. Then, as Centrifugo does: aud must
// contain the configured audience and iss must equal the configured issuer
// (each only when configured); exp is checked with no leeway, a token being
// expired from the second exp names (now >= exp gives ErrExpired); a token
// without exp never expires. A nbf in the future gives ErrExpired too, as
// Centrifugo answers it: the client fetches a fresh token, valid by then
// when the backend's clock merely runs ahead. iat and jti are not checked. A sub claim that is not a string, a connection token with a
// channel claim and a subscription token without one are invalid.
//
// Anonymous connections. A connection token with no sub (or an empty one)
// is valid and gives ConnectClaims.Sub == "": Centrifugo connects such a
// client as anonymous, with no user, even when connecting without a token is
// refused (it takes client.disallow_anonymous_connection_tokens to refuse
// them). The caller decides what an anonymous user may do; a subscription
// token with no sub matches only an anonymous connection.
//
// Expiry. expire_at, when present, overrides exp as the expiry of the
// connection or subscription (exp still decides whether the token itself is
// valid): 0 means never, giving a zero Expires; a value in the past is
// returned as is (Centrifugo answers it with error 110). Otherwise Expires is
// exp, or zero without exp.
//
// Info. info is any JSON value; b64info, when present, takes precedence and
// must be base64 of a JSON value, since Herald speaks JSON only.
package jwtauth

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// ErrExpired is a validly signed token whose exp has passed, or whose nbf
// has not come yet. A client can fetch a fresh one.
var ErrExpired = errors.New("jwtauth: token expired")

// ErrInvalid is any other refusal: a malformed token, alg none, an algorithm
// with no configured key, a bad signature, a wrong aud or iss, or claims of
// the wrong shape.
var ErrInvalid = errors.New("jwtauth: invalid token")

// Keys are an app's verification keys and expected claims.
type Keys struct {
	// HMAC is the secret of HS256/384/512 tokens; nil or empty: none accepted.
	HMAC []byte
	// Public is an *rsa.PublicKey or an *ecdsa.PublicKey, or nil.
	Public crypto.PublicKey
	// Audience, when set, must be one of the token's aud values.
	Audience string
	// Issuer, when set, must equal the token's iss.
	Issuer string
}

// Verifier checks tokens against one app's keys. It is safe for concurrent
// use.
type Verifier struct {
	keys    Keys
	methods []string
}

// NewVerifier checks the keys and returns their verifier. At least one key
// is needed.
func NewVerifier(k Keys) (*Verifier, error) {
	v := &Verifier{keys: k}
	if len(k.HMAC) > 0 {
		v.methods = append(v.methods, "HS256", "HS384", "HS512")
	}
	switch pk := k.Public.(type) {
	case nil:
	case *rsa.PublicKey:
		if pk == nil || pk.N == nil {
			return nil, errors.New("jwtauth: empty RSA public key")
		}
		v.methods = append(v.methods, "RS256", "RS384", "RS512")
	case *ecdsa.PublicKey:
		if pk == nil || pk.Curve == nil {
			return nil, errors.New("jwtauth: empty ECDSA public key")
		}
		alg, ok := ecdsaAlg(pk.Curve)
		if !ok {
			return nil, fmt.Errorf("jwtauth: ECDSA curve %s is not P-256, P-384 or P-521", pk.Curve.Params().Name)
		}
		v.methods = append(v.methods, alg)
	default:
		return nil, fmt.Errorf("jwtauth: public key of type %T is not RSA or ECDSA", k.Public)
	}
	if len(v.methods) == 0 {
		return nil, errors.New("jwtauth: no key")
	}
	return v, nil
}

func ecdsaAlg(c elliptic.Curve) (string, bool) {
	switch c {
	case elliptic.P256():
		return "ES256", true
	case elliptic.P384():
		return "ES384", true
	case elliptic.P521():
		return "ES512", true
	}
	return "", false
}

// SharesKey reports whether a token could be valid for both v and o: they
// have the same HMAC secret or the same public key (in whatever encoding it
// was read), and the audience they require does not tell the two apart
// (either requires none, or both the same one).
func (v *Verifier) SharesKey(o *Verifier) bool {
	if v.keys.Audience != "" && o.keys.Audience != "" && v.keys.Audience != o.keys.Audience {
		return false
	}
	if len(v.keys.HMAC) > 0 && bytes.Equal(v.keys.HMAC, o.keys.HMAC) {
		return true
	}
	type equaler interface{ Equal(crypto.PublicKey) bool }
	if pk, ok := v.keys.Public.(equaler); ok && o.keys.Public != nil && pk.Equal(o.keys.Public) {
		return true
	}
	return false
}

// Costly reports whether checking token may take a public-key signature
// verification, which costs far more than an HMAC (tens of microseconds
// for RS256 or ES256, milliseconds for ES512): v has a public key, and the
// token's header does not name an HMAC algorithm. A header that does not
// decode counts as costly too; the caller may check such tokens off a busy
// loop. Tokens are read as the parser reads them, so a token this calls
// cheap is one the parser checks with the HMAC secret, or refuses.
func (v *Verifier) Costly(token string) bool {
	if v.keys.Public == nil {
		return false
	}
	seg, _, _ := strings.Cut(token, ".")
	if hmac, ok := plainHeaderHMAC(seg); ok {
		return !hmac
	}
	return costlyHeader(seg)
}

// costlyHeader is Costly for any header segment: decoded as the parser
// decodes it, into a map.
func costlyHeader(seg string) bool {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return true
	}
	var h map[string]any
	if json.Unmarshal(b, &h) != nil {
		return true
	}
	alg, _ := h["alg"].(string)
	return !strings.HasPrefix(alg, "HS")
}

// plainHeaderHMAC reads, without allocating, the header segment of the
// tokens signers write, {"alg":"HS256","typ":"JWT"}: at most
// maxPlainHeader bytes, one object whose members are all strings without
// escapes or control characters. It reports whether alg (the last one, as
// in the parser's map) names an HMAC algorithm; ok is false for any other
// header, left to costlyHeader. Within that form a key is "alg" exactly
// when its bytes are, and invalid UTF-8, which encoding/json replaces,
// cannot change whether a value starts with "HS".
func plainHeaderHMAC(seg string) (hmac, ok bool) {
	var buf [maxPlainHeader]byte
	if base64.RawURLEncoding.DecodedLen(len(seg)) > len(buf) {
		return false, false
	}
	n, err := base64.RawURLEncoding.Decode(buf[:], []byte(seg))
	if err != nil {
		return false, false
	}
	b := buf[:n]
	i := 0
	ws := func() {
		for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
			i++
		}
	}
	str := func() (start, end int, ok bool) {
		if i >= len(b) || b[i] != '"' {
			return 0, 0, false
		}
		for j := i + 1; j < len(b); j++ {
			switch c := b[j]; {
			case c == '"':
				start, end, i = i+1, j, j+1
				return start, end, true
			case c == '\\' || c < 0x20:
				return 0, 0, false
			}
		}
		return 0, 0, false
	}
	ws()
	if i >= len(b) || b[i] != '{' {
		return false, false
	}
	i++
	ws()
	if i < len(b) && b[i] == '}' {
		i++
	} else {
		for {
			ws()
			ks, ke, ok := str()
			if !ok {
				return false, false
			}
			ws()
			if i >= len(b) || b[i] != ':' {
				return false, false
			}
			i++
			ws()
			vs, ve, ok := str()
			if !ok {
				return false, false
			}
			if string(b[ks:ke]) == "alg" {
				hmac = ve-vs >= 2 && b[vs] == 'H' && b[vs+1] == 'S'
			}
			ws()
			if i < len(b) && b[i] == ',' {
				i++
				continue
			}
			if i < len(b) && b[i] == '}' {
				i++
				break
			}
			return false, false
		}
	}
	ws()
	return hmac, i == len(b)
}

// maxPlainHeader bounds the headers plainHeaderHMAC reads, on the stack.
const maxPlainHeader = 256

// Methods returns the algorithms the verifier accepts.
func (v *Verifier) Methods() []string { return slices.Clone(v.methods) }

// ConnectClaims are what a valid connection token says.
type ConnectClaims struct {
	// Sub is the user id; "" is an anonymous connection.
	Sub string
	// Expires is when the connection expires; zero: never.
	Expires time.Time
	// Info is the connection info (from info or b64info), or nil.
	Info json.RawMessage
	// Channels are the server-side subscriptions: the keys of subs when it
	// has any (sorted), else channels.
	Channels []string
}

// SubscribeClaims are what a valid subscription token says.
type SubscribeClaims struct {
	Sub, Channel string
	// Client, when not empty, must be the connection's client id (a
	// deprecated claim the caller checks).
	Client string
	// Expires is when the subscription expires; zero: never.
	Expires time.Time
	// Info is the channel info (from info or b64info), or nil.
	Info json.RawMessage
}

// claims are the token claims Herald reads. Unknown claims (meta, data,
// override, ...) are ignored.
type claims struct {
	jwt.RegisteredClaims
	Info     json.RawMessage            `json:"info,omitempty"`
	B64Info  *string                    `json:"b64info,omitempty"`
	Channels []string                   `json:"channels,omitempty"`
	Subs     map[string]json.RawMessage `json:"subs,omitempty"`
	Channel  *string                    `json:"channel,omitempty"`
	Client   string                     `json:"client,omitempty"`
	ExpireAt *int64                     `json:"expire_at,omitempty"`
}

// Connect verifies a connection token at now.
func (v *Verifier) Connect(token string, now time.Time) (ConnectClaims, error) {
	c, err := v.parse(token, now)
	if err != nil {
		return ConnectClaims{}, err
	}
	if c.Channel != nil {
		return ConnectClaims{}, fmt.Errorf("%w: channel claim in a connection token", ErrInvalid)
	}
	info, err := c.info()
	if err != nil {
		return ConnectClaims{}, err
	}
	out := ConnectClaims{Sub: c.Subject, Expires: c.expires(), Info: info}
	if len(c.Subs) > 0 {
		for ch := range c.Subs {
			out.Channels = append(out.Channels, ch)
		}
		slices.Sort(out.Channels)
	} else if len(c.Channels) > 0 {
		out.Channels = slices.Clone(c.Channels)
	}
	return out, nil
}

// Subscribe verifies a subscription token at now. It does not compare the
// claims with the connection: the caller checks Channel, Sub and Client.
func (v *Verifier) Subscribe(token string, now time.Time) (SubscribeClaims, error) {
	c, err := v.parse(token, now)
	if err != nil {
		return SubscribeClaims{}, err
	}
	if c.Channel == nil || *c.Channel == "" {
		return SubscribeClaims{}, fmt.Errorf("%w: no channel claim", ErrInvalid)
	}
	info, err := c.info()
	if err != nil {
		return SubscribeClaims{}, err
	}
	return SubscribeClaims{Sub: c.Subject, Channel: *c.Channel, Client: c.Client, Expires: c.expires(), Info: info}, nil
}

func (v *Verifier) parse(token string, now time.Time) (*claims, error) {
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(v.methods),
		jwt.WithTimeFunc(func() time.Time { return now }),
	}
	if v.keys.Audience != "" {
		opts = append(opts, jwt.WithAudience(v.keys.Audience))
	}
	if v.keys.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(v.keys.Issuer))
	}
	var c claims
	_, err := jwt.NewParser(opts...).ParseWithClaims(token, &c, v.key)
	switch {
	case err == nil:
	case (errors.Is(err, jwt.ErrTokenExpired) || errors.Is(err, jwt.ErrTokenNotValidYet)) &&
		!errors.Is(err, jwt.ErrTokenInvalidAudience) && !errors.Is(err, jwt.ErrTokenInvalidIssuer) &&
		!errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		// Reached only past the signature check: the parser verifies
		// the signature before any claim. Expired, or not valid yet,
		// and nothing else: a token that also fails another check (an
		// aud or iss that is wrong, or missing when required, which the
		// parser reports as a missing claim) is invalid, since a fresh
		// token of the same kind would fail too. A token before its nbf
		// is answered as expired, as Centrifugo does: a backend whose
		// clock runs ahead of this node's signs nbf in its future, and
		// a fresh token fetched a moment later is valid, whereas an
		// invalid one makes the client give up for good.
		return nil, ErrExpired
	default:
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return &c, nil
}

// key is the jwt.Keyfunc: each algorithm family has its own key and no
// other. The parser has already refused an alg outside v.methods.
func (v *Verifier) key(t *jwt.Token) (any, error) {
	switch t.Method.(type) {
	case *jwt.SigningMethodHMAC:
		if len(v.keys.HMAC) > 0 {
			return v.keys.HMAC, nil
		}
	case *jwt.SigningMethodRSA:
		if pk, ok := v.keys.Public.(*rsa.PublicKey); ok {
			return pk, nil
		}
	case *jwt.SigningMethodECDSA:
		if pk, ok := v.keys.Public.(*ecdsa.PublicKey); ok {
			if alg, _ := ecdsaAlg(pk.Curve); alg == t.Method.Alg() {
				return pk, nil
			}
		}
	}
	return nil, errors.New("no key for this algorithm")
}

func (c *claims) expires() time.Time {
	if c.ExpireAt != nil {
		if *c.ExpireAt == 0 {
			return time.Time{}
		}
		return time.Unix(*c.ExpireAt, 0)
	}
	if c.ExpiresAt != nil {
		return c.ExpiresAt.Time
	}
	return time.Time{}
}

func (c *claims) info() (json.RawMessage, error) {
	if c.B64Info != nil {
		b, err := base64.StdEncoding.DecodeString(*c.B64Info)
		if err != nil {
			return nil, fmt.Errorf("%w: b64info is not base64", ErrInvalid)
		}
		if len(b) == 0 {
			return nil, nil
		}
		if !json.Valid(b) {
			return nil, fmt.Errorf("%w: b64info is not base64 of JSON", ErrInvalid)
		}
		return compactOrSelf(b), nil
	}
	if len(c.Info) == 0 || bytes.Equal(c.Info, []byte("null")) {
		return nil, nil
	}
	return compactOrSelf(c.Info), nil
}

func compactOrSelf(b []byte) json.RawMessage {
	var buf bytes.Buffer
	if json.Compact(&buf, b) != nil {
		return json.RawMessage(b)
	}
	return json.RawMessage(buf.Bytes())
}
