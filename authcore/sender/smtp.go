package sender

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/smtp"
	"strings"
	"time"

	"github.com/authgate/authgate/authcore"
)

// DefaultSMTPTimeout bounds one whole SMTP conversation (dial, STARTTLS,
// auth, data). It is longer than the HTTP senders' per-attempt timeout
// because a mail relay needs several round trips and a TLS handshake.
const DefaultSMTPTimeout = 10 * time.Second

// SMTPSubject is the subject of every code email; fixed so that users and
// mail filters can recognise the message.
const SMTPSubject = "Your verification code"

// SMTP emails codes through a mail relay, using STARTTLS when the relay
// offers it. Implicit TLS (port 465) is not supported: relays that accept
// submissions offer STARTTLS on 587.
type SMTP struct {
	// Addr is the relay's "host:port"; the host is also the name its TLS
	// certificate is checked against.
	Addr string
	// From is the sender address, optionally with a display name
	// ("Example <no-reply@example.com>").
	From string
	// Username and Password enable AUTH PLAIN when Username is set.
	// net/smtp refuses to send them over an unencrypted connection (except
	// to localhost), so a relay without STARTTLS fails instead of leaking
	// them.
	Username string
	Password string
	// Timeout bounds the conversation; zero means DefaultSMTPTimeout. The
	// caller's ctx can end it sooner.
	Timeout time.Duration
}

var _ authcore.Sender = (*SMTP)(nil)

// NewSMTP returns an SMTP sender matching the
// `smtp <host:port> <from> [<user> <pass>]` directive.
func NewSMTP(addr, from, username, password string) *SMTP {
	return &SMTP{Addr: addr, From: from, Username: username, Password: password}
}

// Send emails the code to m.To. It is not retried: a relay that accepted
// the message will retry delivery itself, and one that rejected it will
// reject it again.
func (s *SMTP) Send(ctx context.Context, m authcore.Message) error {
	if m.Code == "" {
		return errors.New("smtp: message has no code to send")
	}
	// Parsing and re-serialising both addresses is also what keeps a
	// crafted address from injecting extra headers or recipients.
	to, err := mail.ParseAddress(m.To)
	if err != nil {
		return fmt.Errorf("smtp: invalid recipient address: %w", err)
	}
	from, err := mail.ParseAddress(s.From)
	if err != nil {
		return fmt.Errorf("smtp: invalid from address: %w", err)
	}
	host, _, err := net.SplitHostPort(s.Addr)
	if err != nil {
		return fmt.Errorf("smtp: invalid address %q: %w", s.Addr, err)
	}
	msg := buildMail(from, to, m, time.Now())

	timeout := s.Timeout
	if timeout <= 0 {
		timeout = DefaultSMTPTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// fail prefers the context's reason: once ctx ends the connection is
	// closed under net/smtp, whose own error would only say so.
	fail := func(step string, err error) error {
		if ctx.Err() != nil {
			return fmt.Errorf("smtp: %s: %w", step, ctx.Err())
		}
		return fmt.Errorf("smtp: %s: %w", step, err)
	}

	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", s.Addr)
	if err != nil {
		return fail("dial", err)
	}
	defer conn.Close()
	// net/smtp knows nothing of contexts; closing the connection is what
	// unblocks it when ctx ends (deadline, timeout or cancel). A conn
	// deadline is not used on top: it would race ctx and turn a timeout
	// into a bare i/o error.
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()

	c, err := smtp.NewClient(conn, host)
	if err != nil {
		return fail("greeting", err)
	}
	defer c.Close()
	// Said explicitly because Extension would swallow an EHLO failure.
	if err := c.Hello("localhost"); err != nil {
		return fail("ehlo", err)
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		if err := c.StartTLS(&tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}); err != nil {
			return fail("starttls", err)
		}
	}
	if s.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", s.Username, s.Password, host)); err != nil {
			return fail("auth", err)
		}
	}
	if err := c.Mail(from.Address); err != nil {
		return fail("mail from", err)
	}
	if err := c.Rcpt(to.Address); err != nil {
		return fail("rcpt to", err)
	}
	w, err := c.Data()
	if err != nil {
		return fail("data", err)
	}
	if _, err := w.Write(msg); err != nil {
		return fail("data", err)
	}
	if err := w.Close(); err != nil {
		return fail("data", err)
	}
	if err := c.Quit(); err != nil {
		return fail("quit", err)
	}
	return nil
}

// buildMail renders the plain-text message with CRLF line ends, as SMTP
// requires. Message-ID and Date are set because many spam filters score
// mail without them, and a code that lands in spam is a failed login.
func buildMail(from, to *mail.Address, m authcore.Message, now time.Time) []byte {
	var id [12]byte
	_, _ = rand.Read(id[:]) // never fails since Go 1.24
	domain := "authgate.invalid"
	if at := strings.LastIndexByte(from.Address, '@'); at >= 0 && at < len(from.Address)-1 {
		domain = from.Address[at+1:]
	}
	var b bytes.Buffer
	header := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	header("From", from.String())
	header("To", to.String())
	header("Subject", SMTPSubject)
	header("Date", now.Format(time.RFC1123Z))
	header("Message-ID", "<"+hex.EncodeToString(id[:])+"@"+domain+">")
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=UTF-8")
	header("Content-Transfer-Encoding", "7bit")
	b.WriteString("\r\n")
	b.WriteString(codeText(m.Code, m.ExpiresAt, now) + "\r\n\r\n")
	b.WriteString("If you did not ask for this code, someone may be trying to use your account: do not share it with anyone.\r\n")
	return b.Bytes()
}
