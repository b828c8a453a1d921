package vault

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kms"
)

// NewKMSClient builds a KMS client for region with the usual AWS credential
// chain; a non-empty endpoint (AWS_ENDPOINT_URL_KMS, local-kms in dev) replaces AWS's.
func NewKMSClient(ctx context.Context, region, endpoint string) (*kms.Client, error) {
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(region))
	if err != nil {
		return nil, fmt.Errorf("AWS configuration: %w", err)
	}
	return kms.NewFromConfig(awsCfg, func(o *kms.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	}), nil
}
