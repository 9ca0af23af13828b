//! What every world's adapter shares: calling a pool and flattening the
//! runtime's failures and the component's typed errors into one
//! [`ComponentError`], and the [`PooledWorld`](crate::runtime::pool::PooledWorld)
//! glue that differs between worlds only in the generated names.

use crate::bindings::types as wit_types;
use crate::blocks::ComponentError;
use crate::blocks::state::Feature;
use crate::runtime::pool::{
    Affinity, CallError, CallFuture, InstancePool, PooledInstance, PooledWorld,
};

/// Implements [`PooledWorld`] for a bindgen world: every world exports the
/// same `lifecycle` interface, under its own generated module.
macro_rules! pooled_world {
    ($world:ty, $pre:ident) => {
        impl $crate::runtime::pool::PooledWorld for $world {
            type Pre = $pre<$crate::runtime::instance::InstanceState>;

            fn prepare(
                instance_pre: ::wasmtime::component::InstancePre<
                    $crate::runtime::instance::InstanceState,
                >,
            ) -> ::anyhow::Result<Self::Pre> {
                Ok($pre::new(instance_pre)?)
            }

            fn instantiate<'a>(
                pre: &'a Self::Pre,
                store: &'a mut ::wasmtime::Store<$crate::runtime::instance::InstanceState>,
            ) -> $crate::runtime::pool::CallFuture<'a, Self> {
                Box::pin(pre.instantiate_async(store))
            }

            fn init<'a>(
                &'a self,
                store: &'a mut ::wasmtime::Store<$crate::runtime::instance::InstanceState>,
                metadata: &'a Vec<(String, String)>,
            ) -> $crate::runtime::pool::CallFuture<'a, Result<(), String>> {
                Box::pin(async move {
                    let answer = self
                        .outrig_component_lifecycle()
                        .call_init(store, metadata)
                        .await?;
                    Ok(answer
                        .map_err(|err| $crate::components::call::component_error(err).to_string()))
                })
            }

            fn features<'a>(
                &'a self,
                store: &'a mut ::wasmtime::Store<$crate::runtime::instance::InstanceState>,
            ) -> $crate::runtime::pool::CallFuture<'a, Vec<$crate::bindings::types::Feature>> {
                Box::pin(self.outrig_component_lifecycle().call_features(store))
            }
        }
    };
}
pub(crate) use pooled_world;

/// Runs one call of a world's interface, `operation` (its name in the
/// world, for the metrics), flattening runtime failures and the component's
/// own errors into one [`ComponentError`].
pub async fn invoke<W, T, F>(
    pool: &InstancePool<W>,
    operation: &'static str,
    call: F,
) -> Result<T, ComponentError>
where
    W: PooledWorld,
    F: for<'a> FnOnce(&'a mut PooledInstance<W>) -> CallFuture<'a, Result<T, wit_types::Error>>,
{
    invoke_on(pool, operation, None, call).await
}

/// [`invoke`] on the instance `affinity` keeps to, when given.
pub async fn invoke_on<W, T, F>(
    pool: &InstancePool<W>,
    operation: &'static str,
    affinity: Option<&Affinity>,
    call: F,
) -> Result<T, ComponentError>
where
    W: PooledWorld,
    F: for<'a> FnOnce(&'a mut PooledInstance<W>) -> CallFuture<'a, Result<T, wit_types::Error>>,
{
    let answer = match affinity {
        Some(affinity) => pool.call_with_affinity(operation, affinity, call).await,
        None => pool.call(operation, call).await,
    };
    match answer {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(err)) => Err(component_error(err)),
        Err(err) => Err(runtime_error(pool.name(), err)),
    }
}

/// The features the component declares, asked once when it loads.
pub async fn features<W: PooledWorld>(
    pool: &InstancePool<W>,
) -> Result<Vec<Feature>, ComponentError> {
    let features = pool
        .call("features", |instance| {
            let PooledInstance { store, bindings } = instance;
            bindings.features(store)
        })
        .await
        .map_err(|err| runtime_error(pool.name(), err))?;
    Ok(features.into_iter().map(feature).collect())
}

fn feature(f: wit_types::Feature) -> Feature {
    match f {
        wit_types::Feature::Etag => Feature::Etag,
        wit_types::Feature::Transactional => Feature::Transactional,
        wit_types::Feature::Ttl => Feature::Ttl,
        wit_types::Feature::QueryApi => Feature::QueryApi,
    }
}

/// The component's own error, as the blocks see it.
pub fn component_error(err: wit_types::Error) -> ComponentError {
    match err {
        wit_types::Error::NotFound => ComponentError::NotFound,
        wit_types::Error::EtagMismatch => ComponentError::EtagMismatch,
        wit_types::Error::EtagInvalid => ComponentError::EtagInvalid,
        wit_types::Error::InvalidArgument(m) => ComponentError::InvalidArgument(m),
        wit_types::Error::Unavailable(m) => ComponentError::Unavailable(m),
        wit_types::Error::NotSupported(m) => ComponentError::NotSupported(m),
        wit_types::Error::Internal(m) => ComponentError::Internal(m),
    }
}

/// A runtime failure of component `name`, as the blocks see it.
pub fn runtime_error(name: &str, err: CallError) -> ComponentError {
    let component = name.to_string();
    match err {
        CallError::Timeout(timeout) => ComponentError::Timeout {
            component,
            timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
        },
        CallError::Trapped(reason) | CallError::MemoryLimit(reason) | CallError::Start(reason) => {
            ComponentError::Trapped { component, reason }
        }
        CallError::Overloaded(reason) => ComponentError::Overloaded { component, reason },
    }
}
