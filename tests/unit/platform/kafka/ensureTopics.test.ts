/**
 * The new-topic race kafkajs gives up on: createTopics succeeds, then a broker whose metadata has not caught up
 * answers "does not host this topic-partition" and kafkajs's leader wait throws (only LEADER_NOT_AVAILABLE is retried
 * there). It cannot be made to happen on demand against a real broker, so an admin that answers as that broker did
 * stands in; the real path is covered by every integration test that starts a runtime.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Admin } from 'kafkajs';
import { ensureTopics } from '../../../../services/platform/kafka/kafkaClient.ts';

function protocolError(type: string): Error {
  return Object.assign(new Error(type === 'UNKNOWN_TOPIC_OR_PARTITION' ? 'This server does not host this topic-partition' : type), { type, retriable: true });
}

function admin(createError: Error | undefined, metadataAnswers: (Error | number)[]): Admin & { metadataCalls: number } {
  const a = {
    metadataCalls: 0,
    listTopics: () => Promise.resolve([]),
    createTopics: () => (createError ? Promise.reject(createError) : Promise.resolve(true)),
    fetchTopicMetadata: ({ topics }: { topics: string[] }) => {
      const answer = metadataAnswers[Math.min(a.metadataCalls++, metadataAnswers.length - 1)]!;
      if (answer instanceof Error) return Promise.reject(answer);
      return Promise.resolve({
        topics: topics.map((name) => ({ name, partitions: [{ partitionId: 0, leader: answer, replicas: [], isr: [], partitionErrorCode: 0 }] })),
      });
    },
  };
  return a as unknown as Admin & { metadataCalls: number };
}

const PLAN = [{ topic: 'a.cdr.raw', partitions: 1, retentionMs: 3_600_000 }];

describe('ensureTopics', () => {
  it('waits out a broker that does not know the new topic yet, until it has a leader', async () => {
    const a = admin(protocolError('UNKNOWN_TOPIC_OR_PARTITION'), [protocolError('UNKNOWN_TOPIC_OR_PARTITION'), -1, 1]);
    assert.deepEqual(await ensureTopics(a, PLAN), ['a.cdr.raw']);
    assert.equal(a.metadataCalls, 3, 'asked again until the partition had a leader');
  });

  it('passes any other failure through at once', async () => {
    const a = admin(Object.assign(new Error('denied'), { type: 'TOPIC_AUTHORIZATION_FAILED' }), [1]);
    await assert.rejects(ensureTopics(a, PLAN), /denied/);
    assert.equal(a.metadataCalls, 0);
  });

  it('fails with the broker’s own error when the metadata turns into another failure', async () => {
    const a = admin(protocolError('UNKNOWN_TOPIC_OR_PARTITION'), [Object.assign(new Error('gone'), { type: 'CLUSTER_AUTHORIZATION_FAILED' })]);
    await assert.rejects(ensureTopics(a, PLAN), /gone/);
  });
});
