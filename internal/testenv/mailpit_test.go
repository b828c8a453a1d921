package testenv

import (
	"context"
	"fmt"
	"net"
	"net/smtp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestMailpit(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: starts Mailpit")
	}
	mp := MailpitForTest(t)
	t.Cleanup(StopMailpit)
	require.Same(t, mp, MailpitForTest(t), "one Mailpit per test binary")
	require.True(t, strings.HasPrefix(mp.SMTPURL(), "smtp://127.0.0.1:"), mp.SMTPURL())

	to := fmt.Sprintf("security+%s@example.com", uniqueSuffixHex(4))
	body := "From: DPP <dpp@example.com>\r\n" +
		"To: " + to + "\r\n" +
		"Subject: Security incident notification\r\n" +
		"\r\n" +
		"An incident was detected.\r\n"
	require.NoError(t, smtp.SendMail(mp.SMTPAddr, nil, "dpp@example.com", []string{to}, []byte(body)))

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var got []Message
	for {
		msgs, err := mp.Messages(ctx)
		require.NoError(t, err)
		got = got[:0]
		for _, m := range msgs {
			if m.SentTo(to) {
				got = append(got, m)
			}
		}
		if len(got) > 0 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("message to %s never arrived", to)
		case <-time.After(50 * time.Millisecond):
		}
	}
	require.Len(t, got, 1)
	require.Equal(t, "Security incident notification", got[0].Subject)
	require.Equal(t, "dpp@example.com", got[0].From.Address)
	require.Equal(t, "DPP", got[0].From.Name)
	require.NotEmpty(t, got[0].ID)

	require.NoError(t, mp.DeleteAll(ctx))
	msgs, err := mp.Messages(ctx)
	require.NoError(t, err)
	require.Empty(t, msgs)

	StopMailpit()
	_, err = net.DialTimeout("tcp", mp.SMTPAddr, time.Second)
	require.Error(t, err, "Mailpit still listens after StopMailpit")
}
