//! GraphQL answer time of the twin's indexer on a populated store, in process
//! (no HTTP, no chain): the SDK's user-files page and `_meta`.
//!
//! `cargo bench -p vana-load-twin --bench indexer`

use std::sync::Arc;

use alloy::primitives::{Address, B256, U256};
use criterion::{Criterion, criterion_group, criterion_main};
use protocol::api::subgraph::queries;
use serde_json::json;
use vana_load_twin::indexer::events::{Event, EventCtx, IndexedContracts};
use vana_load_twin::indexer::graphql::{self, MetaInfo, ReaderPool};
use vana_load_twin::indexer::store::{self, Batch, KnownBlock};

const USERS: u64 = 2_000;
const FILES_PER_USER: u64 = 50;

fn populate(path: &std::path::Path) {
    let mut conn = store::open(path).unwrap();
    let source = IndexedContracts {
        data_registry: Address::with_last_byte(1),
        permissions: Address::with_last_byte(2),
        grantees: Address::with_last_byte(3),
        servers: Address::with_last_byte(4),
        start_block: 1,
    };
    store::init(&mut conn, &source).unwrap();
    let mut file_id = 0u64;
    // One block per 100 files, as a busy chain would have.
    let per_block = 100;
    let total = USERS * FILES_PER_USER;
    for block in 1..=total / per_block {
        let mut events = Vec::with_capacity(per_block as usize);
        for _ in 0..per_block {
            file_id += 1;
            let owner = Address::left_padding_from(&(file_id % USERS + 1).to_be_bytes());
            events.push((
                EventCtx {
                    block,
                    block_hash: B256::from(U256::from(block)),
                    timestamp: 1_700_000_000 + block,
                    tx_hash: B256::from(U256::from(file_id)),
                    log_index: 0,
                },
                Event::FileAdded {
                    file_id: U256::from(file_id),
                    owner,
                    url: format!("ipfs://bafy{file_id}"),
                },
            ));
        }
        let head = KnownBlock {
            number: block,
            hash: B256::from(U256::from(block)),
            timestamp: 1_700_000_000 + block,
        };
        store::apply(
            &mut conn,
            &Batch {
                head,
                blocks: vec![],
                events,
                indexing_errors: 0,
            },
        )
        .unwrap();
    }
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.sqlite");
    populate(&path);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let schema = graphql::schema(MetaInfo {
        deployment: "bench".into(),
        before_start: 0,
    });
    let pool = Arc::new(ReaderPool::new(path));
    let user = format!("{:#x}", Address::left_padding_from(&777u64.to_be_bytes()));

    let run = |query: &'static str, variables: serde_json::Value| {
        let (schema, pool) = (schema.clone(), pool.clone());
        async move {
            let tx = pool.begin().await.unwrap();
            let request = async_graphql::Request::new(query)
                .variables(async_graphql::Variables::from_json(variables))
                .data(tx.clone());
            let response = schema.execute(request).await;
            pool.finish(tx).await;
            assert!(response.errors.is_empty(), "{:?}", response.errors);
            response
        }
    };

    let mut g = c.benchmark_group("indexer_graphql");
    g.bench_function(
        "GetUserFilesPaginated first=100 of 50 files, 100k in store",
        |b| {
            b.iter(|| {
                rt.block_on(run(
                    queries::GET_USER_FILES_PAGINATED,
                    json!({"userId": user, "first": 100, "skip": 0,
                       "orderBy": "addedAtBlock", "orderDirection": "desc"}),
                ))
            })
        },
    );
    g.bench_function("GetSubgraphMeta", |b| {
        b.iter(|| rt.block_on(run(queries::GET_SUBGRAPH_META, json!({}))))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
