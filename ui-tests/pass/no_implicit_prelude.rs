//! Generated code names nothing from the prelude.

#[no_implicit_prelude]
mod service {
    #[::gotalk::service]
    pub trait Plain {
        async fn echo(&self, s: ::std::string::String) -> ::std::string::String;
        async fn maybe(&self) -> ::core::result::Result<u8, ::gotalk::Error>;
        async fn numbers(&self, items: ::gotalk::StreamIn<u8>) -> ::gotalk::StreamOut<u8>;
        async fn ctx(&self, sock: &::gotalk::Sock);
    }

    #[::gotalk::notification]
    pub trait Told {
        async fn told(&self, what: ::std::string::String);
    }
}

fn main() {}
