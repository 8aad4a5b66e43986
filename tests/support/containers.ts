/**
 * The Docker path of the test environment (only where a Docker engine runs; not on the development
 * machines of this project, which have the Docker client only). Kafka in KRaft mode and a ClickHouse
 * server, via testcontainers 11 (12 needs Node >= 22).
 */
import { GenericContainer, Wait, type StartedTestContainer } from 'testcontainers';

export interface Containers {
  kafkaBrokers: string;
  clickhouseUrl: string;
  stop(): Promise<void>;
}

export async function startContainers(): Promise<Containers> {
  const kafka: StartedTestContainer = await new GenericContainer('apache/kafka:3.9.1')
    .withExposedPorts({ container: 9092, host: 19093 })
    .withEnvironment({
      KAFKA_NODE_ID: '1',
      KAFKA_PROCESS_ROLES: 'broker,controller',
      KAFKA_LISTENERS: 'PLAINTEXT://:9092,CONTROLLER://:9093',
      KAFKA_ADVERTISED_LISTENERS: 'PLAINTEXT://127.0.0.1:19093',
      KAFKA_CONTROLLER_LISTENER_NAMES: 'CONTROLLER',
      KAFKA_CONTROLLER_QUORUM_VOTERS: '1@localhost:9093',
      KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR: '1',
      KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR: '1',
      KAFKA_TRANSACTION_STATE_LOG_MIN_ISR: '1',
      KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS: '0',
    })
    .withWaitStrategy(Wait.forLogMessage(/Kafka Server started/))
    .start();
  const clickhouse: StartedTestContainer = await new GenericContainer('clickhouse/clickhouse-server:25.8')
    .withExposedPorts(8123)
    .withEnvironment({ CLICKHOUSE_SKIP_USER_SETUP: '1' })
    .withWaitStrategy(Wait.forHttp('/ping', 8123))
    .start();
  return {
    kafkaBrokers: `127.0.0.1:19093`,
    clickhouseUrl: `http://${clickhouse.getHost()}:${clickhouse.getMappedPort(8123)}`,
    async stop() {
      await kafka.stop();
      await clickhouse.stop();
    },
  };
}
