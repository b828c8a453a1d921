package codec

import (
	"context"
	"fmt"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/plusranger/dpp/internal/config"
	"github.com/plusranger/dpp/internal/vault"
)

// DataConverter is the SDK's default data converter with this codec applied to
// every payload. KMS calls may take longer than the workflow deadlock detector's
// second, so it is paused while the converter runs.
func (c *Codec) DataConverter() converter.DataConverter {
	return workflow.DataConverterWithoutDeadlockDetection(
		converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), c))
}

// Converters returns the data converter and the failure converter every Temporal
// client of dpp (worker, starter, tests, replayers) uses. The failure converter
// moves failure messages and stack traces into an encoded payload
// (EncodeCommonAttributes), so they are encrypted like everything else; the
// history shows "Encoded failure" in their place.
func (c *Codec) Converters() (converter.DataConverter, converter.FailureConverter) {
	dc := c.DataConverter()
	return dc, temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{
		DataConverter: dc, EncodeCommonAttributes: true,
	})
}

// ForConfig returns the codec the configuration describes: it encodes under
// DPP_CODEC_KMS_KEY_ID (default DPP_KMS_KEY_ID) for TEMPORAL_NAMESPACE, and
// decodes under that key, DPP_CODEC_PREVIOUS_KMS_KEY_IDS and DPP_KMS_KEY_ID (the
// codec key before it was set). A nil client means a KMS client built from
// AWS_REGION and AWS_ENDPOINT_URL_KMS.
func ForConfig(ctx context.Context, cfg *config.Config, client vault.KMS) (*Codec, error) {
	if client == nil {
		var err error
		if client, err = vault.NewKMSClient(ctx, cfg.AWSRegion, cfg.KMSEndpoint); err != nil {
			return nil, err
		}
	}
	keyID := cfg.CodecKMSKeyID
	if keyID == "" {
		keyID = cfg.KMSKeyID
	}
	previous := append(append([]string(nil), cfg.CodecPreviousKMSKeyIDs...), cfg.KMSKeyID)
	c, err := New(client, Options{KeyID: keyID, PreviousKeyIDs: previous, Namespace: cfg.TemporalNamespace})
	if err != nil {
		return nil, fmt.Errorf("DPP_CODEC_KMS_KEY_ID: %w", err)
	}
	return c, nil
}

// ConvertersForConfig is ForConfig followed by Converters, for programs and tests
// that need only the converters.
func ConvertersForConfig(ctx context.Context, cfg *config.Config) (converter.DataConverter, converter.FailureConverter, error) {
	c, err := ForConfig(ctx, cfg, nil)
	if err != nil {
		return nil, nil, err
	}
	dc, fc := c.Converters()
	return dc, fc, nil
}

// WorkerInterceptor decodes each signal's payloads as the signal is delivered to
// the workflow. The SDK drops a signal whose payload fails to decode when the
// workflow receives it (it logs "Corrupted signal received"); decoding here
// instead turns a KMS outage into a failed workflow task, retried until KMS is
// back, so no signal (a legal hold, say) is ever lost. The decoded payloads then
// pass through the data converter unchanged.
func (c *Codec) WorkerInterceptor() interceptor.WorkerInterceptor {
	return &workerInterceptor{codec: c}
}

type workerInterceptor struct {
	interceptor.WorkerInterceptorBase
	codec *Codec
}

func (w *workerInterceptor) InterceptWorkflow(ctx workflow.Context, next interceptor.WorkflowInboundInterceptor) interceptor.WorkflowInboundInterceptor {
	i := &signalDecoder{codec: w.codec}
	i.Next = next
	return i
}

type signalDecoder struct {
	interceptor.WorkflowInboundInterceptorBase
	codec *Codec
}

func (s *signalDecoder) HandleSignal(ctx workflow.Context, in *interceptor.HandleSignalInput) error {
	if len(in.Arg.GetPayloads()) > 0 {
		decoded, err := s.codec.Decode(in.Arg.GetPayloads())
		if err != nil {
			return fmt.Errorf("signal %q: %w", in.SignalName, err)
		}
		in = &interceptor.HandleSignalInput{SignalName: in.SignalName, Arg: &commonpb.Payloads{Payloads: decoded}}
	}
	return s.Next.HandleSignal(ctx, in)
}
