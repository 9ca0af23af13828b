//! What every `export_*!` macro shares: the one instance of the component's
//! type per component instance, and the `lifecycle` export that creates it.

/// Declares, inside an `export_*!` expansion, a `struct Export`, the
/// thread-local slot holding the component's value, a `with_instance`
/// accessor, and `Export`'s `lifecycle::Guest` impl (`init` fills the slot,
/// `features` asks the type). `$lifecycle` names the world's generated
/// `lifecycle` module, `$kind` the trait the type implements.
#[doc(hidden)]
#[macro_export]
macro_rules! __export_instance {
    ($ty:ty, $kind:path, $lifecycle:ident) => {
        struct Export;

        ::std::thread_local! {
            static INSTANCE: ::std::cell::RefCell<::std::option::Option<$ty>> =
                const { ::std::cell::RefCell::new(::std::option::Option::None) };
        }

        /// Runs `f` on the initialised value; before `init` every call fails.
        fn with_instance<T>(f: impl FnOnce(&mut $ty) -> $crate::Result<T>) -> $crate::Result<T> {
            INSTANCE.with(|cell| match cell.borrow_mut().as_mut() {
                ::std::option::Option::Some(value) => f(value),
                ::std::option::Option::None => ::std::result::Result::Err($crate::Error::Internal(
                    "the component was not initialised".into(),
                )),
            })
        }

        impl $lifecycle::Guest for Export {
            fn init(metadata: ::std::vec::Vec<(String, String)>) -> $crate::Result<()> {
                let value = <$ty as $kind>::init(metadata.into())?;
                INSTANCE.with(|cell| *cell.borrow_mut() = ::std::option::Option::Some(value));
                Ok(())
            }

            fn features() -> ::std::vec::Vec<$crate::Feature> {
                <$ty as $kind>::features()
            }
        }
    };
}
