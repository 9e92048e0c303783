//! The oracle (the simulator and the ground-truth glue) restates public facts instead of
//! importing the connector's constants (DESIGN.md, "Why does the simulator keep its own copies
//! of some constants?"); where both restate the same fact, the copies must agree.

use source_facebook_marketing::{model, read::insights, streams};

#[test]
fn the_oracles_copies_of_public_facts_equal_the_connectors() {
    assert_eq!(host_test::truth::ALL_AD_STATUSES.as_slice(), model::AD_STATUSES);
    assert_eq!(host_test::truth::DEFAULT_HISTORY_DAYS, insights::DEFAULT_HISTORY_DAYS);
    assert_eq!(host_test::truth::RETENTION_DAYS, insights::RETENTION_DAYS);
    let entity: Vec<&str> = streams::ENTITY_STREAMS.iter().map(|e| e.name).collect();
    assert_eq!(graph_sim::ENTITY_STREAMS, entity.as_slice(), "the simulator's entity stream names");
    let insights: Vec<&str> = streams::BUILTIN_INSIGHTS.iter().map(|b| b.name).collect();
    assert_eq!(graph_sim::INSIGHT_STREAMS.as_slice(), insights.as_slice(), "the simulator's insights stream names");
}
