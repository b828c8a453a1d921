package notifications

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// NewSQSClient builds an SQS client for region; a non-empty endpoint
// (AWS_ENDPOINT_URL_SQS: goaws in dev and tests) replaces AWS's.
func NewSQSClient(ctx context.Context, region, endpoint string) (*sqs.Client, error) {
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(region))
	if err != nil {
		return nil, fmt.Errorf("AWS configuration: %w", err)
	}
	return sqs.NewFromConfig(cfg, func(o *sqs.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	}), nil
}

// Queue is one SQS queue of notifications.
type Queue struct {
	SQS *sqs.Client
	URL string
}

// Message is one received message: its body and the receipt handle that
// deletes it.
type Message struct {
	ID      string
	Body    []byte
	Receipt string
}

// Receive long-polls for up to max messages (1 to 10) for up to wait seconds
// (0 to 20) and hides what it returns for visibility seconds: a message not
// deleted by then is delivered again, so a consumer that dies loses nothing.
func (q *Queue) Receive(ctx context.Context, max, wait, visibility int32) ([]Message, error) {
	out, err := q.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl: aws.String(q.URL), MaxNumberOfMessages: max, WaitTimeSeconds: wait,
		VisibilityTimeout: visibility,
	})
	if err != nil {
		return nil, fmt.Errorf("SQS ReceiveMessage: %w", err)
	}
	msgs := make([]Message, 0, len(out.Messages))
	for _, m := range out.Messages {
		msgs = append(msgs, Message{ID: aws.ToString(m.MessageId), Body: []byte(aws.ToString(m.Body)), Receipt: aws.ToString(m.ReceiptHandle)})
	}
	return msgs, nil
}

// Delete removes a handled message.
func (q *Queue) Delete(ctx context.Context, m Message) error {
	if _, err := q.SQS.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(q.URL), ReceiptHandle: aws.String(m.Receipt)}); err != nil {
		return fmt.Errorf("SQS DeleteMessage: %w", err)
	}
	return nil
}

// Send puts a message body on the queue (the sandbox's side of Amazon).
func (q *Queue) Send(ctx context.Context, body []byte) error {
	if _, err := q.SQS.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(q.URL), MessageBody: aws.String(string(body))}); err != nil {
		return fmt.Errorf("SQS SendMessage: %w", err)
	}
	return nil
}

// ARN asks SQS for the queue's ARN: the Notifications API's destination names
// the queue by it.
func (q *Queue) ARN(ctx context.Context) (string, error) {
	out, err := q.SQS.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(q.URL), AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn},
	})
	if err != nil {
		return "", fmt.Errorf("SQS GetQueueAttributes: %w", err)
	}
	arn := out.Attributes[string(types.QueueAttributeNameQueueArn)]
	if arn == "" {
		return "", errors.New("SQS GetQueueAttributes: no QueueArn")
	}
	return arn, nil
}

// QueueURLForARN asks SQS for the URL of the queue an ARN names
// (arn:aws:sqs:<region>:<account>:<name>).
func QueueURLForARN(ctx context.Context, c *sqs.Client, arn string) (string, error) {
	parts := strings.Split(arn, ":")
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "sqs" || parts[5] == "" {
		return "", errors.New("notifications: the destination's sqs.arn is not an SQS queue ARN")
	}
	in := &sqs.GetQueueUrlInput{QueueName: aws.String(parts[5])}
	if parts[4] != "" {
		in.QueueOwnerAWSAccountId = aws.String(parts[4])
	}
	out, err := c.GetQueueUrl(ctx, in)
	if err != nil {
		return "", fmt.Errorf("SQS GetQueueUrl: %w", err)
	}
	return aws.ToString(out.QueueUrl), nil
}
