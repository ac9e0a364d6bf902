package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"

	"github.com/heraldhq/herald/appauth"
	"github.com/heraldhq/herald/internal/apps"
	"github.com/heraldhq/herald/internal/channel"
	"github.com/heraldhq/herald/internal/config"
	"github.com/heraldhq/herald/internal/jwtauth"
	"github.com/heraldhq/herald/internal/pusher"
)

// errInvalid is a token check's verdict: the token is not valid, and why.
var errInvalid = errors.New("invalid")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errInvalid, fmt.Sprintf(format, args...))
}

// checked is what the token given to herald token check holds.
type checked struct {
	auth, channelData, userData string
	hasChannelData, hasUserData bool
	jwt                         string
}

// parseChecked reads a JWT, a key:signature auth string, or an auth
// endpoint's JSON answer ({auth, channel_data} or {auth, user_data}, or a
// Centrifuge batch entry {token}).
func parseChecked(tok string, f *tokenFlags) (checked, error) {
	tok = strings.TrimSpace(tok)
	var c checked
	if strings.HasPrefix(tok, "{") {
		var obj struct {
			Auth        *string `json:"auth"`
			ChannelData *string `json:"channel_data"`
			UserData    *string `json:"user_data"`
			Token       *string `json:"token"`
		}
		if err := json.Unmarshal([]byte(tok), &obj); err != nil {
			return c, invalid("not a JWT, an auth string or an auth endpoint's JSON: %v", err)
		}
		switch {
		case obj.Token != nil:
			c.jwt = *obj.Token
		case obj.Auth != nil:
			c.auth = *obj.Auth
		default:
			return c, invalid("the JSON has neither auth nor token")
		}
		if obj.ChannelData != nil {
			c.channelData, c.hasChannelData = *obj.ChannelData, true
		}
		if obj.UserData != nil {
			c.userData, c.hasUserData = *obj.UserData, true
		}
	} else if strings.Count(tok, ".") == 2 && !strings.Contains(tok, ":") {
		c.jwt = tok
	} else {
		c.auth = tok
	}
	if *f.channelData != "" {
		if c.hasChannelData && c.channelData != *f.channelData {
			return c, errors.New("token check: --channel-data differs from the token's channel_data")
		}
		c.channelData, c.hasChannelData = *f.channelData, true
	}
	if *f.userData != "" {
		if c.hasUserData && c.userData != *f.userData {
			return c, errors.New("token check: --user-data differs from the token's user_data")
		}
		c.userData, c.hasUserData = *f.userData, true
	}
	return c, nil
}

// tokenCheck says whether tok is valid for app, and if not exactly why.
func tokenCheck(cfg config.Config, app apps.App, f *tokenFlags, tok string, now time.Time, out io.Writer) error {
	c, err := parseChecked(tok, f)
	if err != nil {
		return err
	}
	var verdict string
	if c.jwt != "" {
		verdict, err = checkJWT(cfg, app, f, c.jwt, now)
	} else {
		verdict, err = checkAuth(cfg, app, f, c)
	}
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(out, "valid: "+verdict)
	return err
}

func checkAuth(cfg config.Config, app apps.App, f *tokenFlags, c checked) (string, error) {
	key, sig, ok := strings.Cut(c.auth, ":")
	if !ok || key == "" {
		return "", invalid("not key:signature")
	}
	if _, err := hex.DecodeString(sig); err != nil || len(sig) != 64 {
		return "", invalid("the signature %q is not 64 hex digits (HMAC-SHA256)", short(sig))
	}
	if key != app.Key {
		if other := appByKey(cfg, key); other != nil {
			return "", invalid("wrong key: signed for app %s (key %q), not this app (key %q)", other.ID, key, app.Key)
		}
		return "", invalid("wrong key: the token names key %q, this app's key is %q", key, app.Key)
	}
	if *f.socketID == "" {
		return "", errors.New("token check: an auth string is checked for a socket: give --socket-id")
	}
	if !appauth.ValidSocketID(*f.socketID) {
		return "", errors.New("token check: --socket-id is not digits.digits")
	}
	var msg, what string
	var variants []variant
	switch {
	case c.hasUserData:
		if *f.channel != "" {
			return "", errors.New("token check: user_data is for user authentication, not --channel")
		}
		msg = *f.socketID + "::user::" + c.userData
		what = fmt.Sprintf("user authentication of socket %s as %s", *f.socketID, c.userData)
	case *f.channel == "":
		return "", errors.New("token check: give the --channel the auth string is for (or the user_data of a sign-in)")
	default:
		msg = *f.socketID + ":" + *f.channel
		what = fmt.Sprintf("channel authorization of socket %s for %s", *f.socketID, *f.channel)
		if c.hasChannelData {
			variants = channelDataVariants(msg, c.channelData)
			msg += ":" + c.channelData
			what += " as " + c.channelData
		} else if strings.HasPrefix(*f.channel, "presence-") {
			what += " with no channel_data (accepted only from a signed-in connection)"
		}
	}
	if hmacEqual(app.Secret, msg, sig) {
		if err := checkSigned(app, *f.channel, c); err != nil {
			return "", err
		}
		return what, nil
	}
	for _, v := range variants {
		if hmacEqual(app.Secret, v.msg, sig) {
			return "", invalid("tampered channel_data: the signature is for %s, not for the channel_data given (%s); send channel_data byte for byte as the auth endpoint returned it", v.what, short(c.channelData))
		}
	}
	for _, s := range otherSecrets(cfg, app) {
		if hmacEqual(s.secret, msg, sig) {
			return "", invalid("wrong secret: signed with %s, not this app's secret", s.what)
		}
	}
	return "", invalid("wrong signature for %s: signed with another secret, for another socket id or channel, or the channel_data or user_data was changed after signing; an HMAC cannot tell which, so compare each with what the auth endpoint signed (expected HMAC-SHA256 hex of %q)", what, msg)
}

type variant struct{ msg, what string }

// checkSigned refuses what a correctly signed auth carries that Herald
// would still refuse on subscribe or sign-in: channel_data or user_data
// that does not decode, a user id over the bound, a user_info over the
// app's max_presence_user_info_bytes. The signature is right, so the
// verdict says so: the backend, not the client, has to change.
func checkSigned(app apps.App, ch string, c checked) error {
	var id string
	var info json.RawMessage
	switch {
	case c.hasUserData:
		ud, err := pusher.ParseUserData(c.userData)
		if err != nil {
			return invalid("the signature is right, but Herald refuses the sign-in: %s", badData(err))
		}
		if !channel.ValidUserID(ud.ID) {
			return invalid("the signature is right, but Herald refuses the sign-in: user id %q may only contain A-Z a-z 0-9 _ - = @ , . ; and at most %d of them", short(ud.ID), channel.MaxUserIDLength)
		}
		id, info = ud.ID, ud.UserInfo
	case c.hasChannelData && strings.HasPrefix(ch, "presence-"):
		cd, err := pusher.ParseChannelData(c.channelData)
		if err != nil {
			return invalid("the signature is right, but Herald refuses the subscription: %s", badData(err))
		}
		if channel.UserIDTooLong(cd.UserID) {
			return invalid("the signature is right, but Herald refuses the subscription: user_id is %d characters, at most %d allowed", utf8.RuneCountInString(cd.UserID), channel.MaxUserIDLength)
		}
		id, info = cd.UserID, cd.UserInfo
	default:
		return nil
	}
	if len(info) > app.MaxPresenceUserInfoBytes {
		return invalid("the signature is right, but Herald refuses user %q: user_info is %d bytes, at most %d allowed (max_presence_user_info_bytes)", short(id), len(info), app.MaxPresenceUserInfoBytes)
	}
	return nil
}

// channelDataVariants are the strings the signature may be for when the
// channel_data given is not the one signed: none at all, or the same JSON
// encoded differently (a client or proxy that parsed and re-encoded it).
func channelDataVariants(base, data string) []variant {
	vs := []variant{{base, "no channel_data at all (it was added after signing)"}}
	var buf bytes.Buffer
	if json.Compact(&buf, []byte(data)) == nil && buf.String() != data {
		vs = append(vs, variant{base + ":" + buf.String(), "its compact encoding " + short(buf.String())})
	}
	var v any
	if json.Unmarshal([]byte(data), &v) == nil {
		if b, err := json.Marshal(v); err == nil && string(b) != data && string(b) != buf.String() {
			vs = append(vs, variant{base + ":" + string(b), "a re-encoding of it " + short(string(b))})
		}
	}
	return vs
}

type namedSecret struct{ secret, what string }

// otherSecrets are the secrets a token may have been signed with by
// mistake: another app's, the development app's, or this app's JWT secret.
func otherSecrets(cfg config.Config, app apps.App) []namedSecret {
	var out []namedSecret
	for _, a := range cfg.Apps {
		if a.ID != app.ID && a.Secret != app.Secret {
			out = append(out, namedSecret{a.Secret, "app " + a.ID + "'s secret"})
		}
	}
	if app.Secret != config.DevAppSecret {
		out = append(out, namedSecret{config.DevAppSecret, "the development app's secret (" + config.DevAppSecret + ")"})
	}
	if app.JWTSecret != "" && app.JWTSecret != app.Secret {
		out = append(out, namedSecret{app.JWTSecret, "the app's JWT secret (HERALD_APP_JWT_SECRET)"})
	}
	return out
}

func appByKey(cfg config.Config, key string) *apps.App {
	for i := range cfg.Apps {
		if cfg.Apps[i].Key == key {
			return &cfg.Apps[i]
		}
	}
	return nil
}

func hmacEqual(secret, msg, sig string) bool {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(msg))
	want := hex.EncodeToString(m.Sum(nil))
	return hmac.Equal([]byte(want), []byte(strings.ToLower(sig)))
}

// badData is a decoding error of the pusher package without its generic
// prefix, which speaks of event data.
func badData(err error) string {
	return strings.TrimPrefix(err.Error(), pusher.ErrBadData.Error()+": ")
}

func short(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// checkJWT verifies a JWT as Herald does, then explains a refusal: the
// algorithm, the key, the expiry, and the channel, client and user it is
// for.
func checkJWT(cfg config.Config, app apps.App, f *tokenFlags, tok string, now time.Time) (string, error) {
	reg, err := apps.NewRegistry([]apps.App{app})
	if err != nil {
		return "", err
	}
	v := reg.All()[0].JWT()
	var raw jwt.MapClaims
	t, _, err := jwt.NewParser().ParseUnverified(tok, &raw)
	if err != nil {
		return "", invalid("not a JWT: %v", err)
	}
	alg := t.Method.Alg()
	if !slices.Contains(v.Methods(), alg) {
		hint := ""
		if alg == "none" {
			hint = " (unsigned tokens are never accepted)"
		} else if !strings.HasPrefix(alg, "HS") && app.JWTPublicKey == "" {
			hint = " (set HERALD_APP_JWT_PUBLIC_KEY or jwt_public_key for RS and ES tokens)"
		}
		return "", invalid("algorithm %s not allowed: this app accepts %s%s", alg, strings.Join(v.Methods(), ", "), hint)
	}
	// The signature alone, so that a bad one is named before any claim.
	if _, err := jwt.NewParser(jwt.WithoutClaimsValidation(), jwt.WithValidMethods([]string{alg})).Parse(tok, keyFor(app)); err != nil {
		if errors.Is(err, jwt.ErrTokenSignatureInvalid) {
			if strings.HasPrefix(alg, "HS") {
				for _, s := range otherSecrets(cfg, app) {
					if _, err := jwt.Parse(tok, func(*jwt.Token) (any, error) { return []byte(s.secret), nil }, jwt.WithoutClaimsValidation()); err == nil {
						return "", invalid("wrong key: signed with %s, not the key this app verifies %s tokens with", s.what, alg)
					}
				}
				if app.JWTSecret != "" {
					if _, err := jwt.Parse(tok, func(*jwt.Token) (any, error) { return []byte(app.Secret), nil }, jwt.WithoutClaimsValidation()); err == nil {
						return "", invalid("wrong key: signed with the app secret, but this app verifies %s tokens with its JWT secret (HERALD_APP_JWT_SECRET)", alg)
					}
				}
				return "", invalid("wrong key: the %s signature does not verify with the app's JWT secret (HERALD_APP_JWT_SECRET, or the app secret when unset)", alg)
			}
			return "", invalid("wrong key: the %s signature does not verify with the app's public key (%s)", alg, app.JWTPublicKey)
		}
		return "", invalid("%v", err)
	}
	var sub, channel, client string
	var expires time.Time
	if _, isSub := raw["channel"]; isSub {
		sc, err := v.Subscribe(tok, now)
		if err != nil {
			return "", jwtRefusal(err, raw, now)
		}
		sub, channel, client, expires = sc.Sub, sc.Channel, sc.Client, sc.Expires
	} else {
		cc, err := v.Connect(tok, now)
		if err != nil {
			return "", jwtRefusal(err, raw, now)
		}
		sub, expires = cc.Sub, cc.Expires
	}
	if *f.channel != "" && channel != *f.channel {
		if channel == "" {
			return "", invalid("other channel: a connection token, not a subscription token for %q", *f.channel)
		}
		return "", invalid("other channel: the token is for channel %q, not %q", channel, *f.channel)
	}
	if *f.client != "" && client != "" && client != *f.client {
		return "", invalid("other client: the token is bound to client %q, not %q", client, *f.client)
	}
	if *f.sub != "" && sub != *f.sub {
		return "", invalid("other user: the token is for user %q, not %q", sub, *f.sub)
	}
	what := "connection token"
	if channel != "" {
		what = fmt.Sprintf("subscription token for channel %q", channel)
		if client != "" {
			what += fmt.Sprintf(", client %q", client)
		}
	}
	if sub == "" {
		what += ", anonymous"
	} else {
		what += fmt.Sprintf(", user %q", sub)
	}
	if expires.IsZero() {
		what += ", never expires"
	} else {
		what += fmt.Sprintf(", expires at %s (in %s)", expires.UTC().Format(time.RFC3339), expires.Sub(now).Round(time.Second))
	}
	return what + " (" + alg + ")", nil
}

func jwtRefusal(err error, raw jwt.MapClaims, now time.Time) error {
	if errors.Is(err, jwtauth.ErrExpired) {
		if exp, e := raw.GetExpirationTime(); e == nil && exp != nil {
			return invalid("expired at %s (%s ago)", exp.UTC().Format(time.RFC3339), now.Sub(exp.Time).Round(time.Second))
		}
		return invalid("expired")
	}
	return invalid("%s", strings.TrimPrefix(err.Error(), "jwtauth: invalid token: "))
}

// keyFor is the verification key of the app for a token's algorithm.
func keyFor(app apps.App) jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) {
		switch t.Method.(type) {
		case *jwt.SigningMethodHMAC:
			return []byte(jwtSecret(app)), nil
		default:
			if app.JWTPublicKey == "" {
				return nil, errors.New("no public key")
			}
			return apps.ReadPublicKey(app.JWTPublicKey)
		}
	}
}
