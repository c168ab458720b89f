//! Wi-Fi and IP: the station (DHCP) and the fallback access point (192.168.4.1/24 with a small
//! DHCP server), each on its own embassy-net stack, and the radio task that chooses between them.
//!
//! The radio task is the only writer of [`NETWORK`]; the chat listeners follow it to the stack
//! that is up, and drop their connections when it changes.

use core::net::Ipv4Addr;

use edge_dhcp::{Options, Packet};
use embassy_futures::select::{Either, Either3, select, select3};
use embassy_net::udp::{PacketMetadata, UdpSocket};
use embassy_net::{DhcpConfig, Ipv4Cidr, Runner, Stack, StackResources, StaticConfigV4};
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_sync::signal::Signal;
use embassy_sync::watch::{Receiver, Sender, Watch};
use embassy_time::{Duration, Instant, Timer, with_timeout};
use esp_radio::wifi::{
    AuthenticationMethodConfig, Config, Interface, WifiController, ap::AccessPointConfig,
    sta::StationConfig,
};
use espchat_core::{PASSWORD_MAX, PASSWORD_MIN, PORT, SSID_MAX, WifiCredentials};
use espchat_records::{
    ACCESS_POINT_ADDRESS, AccessPointRetry, AddressNews, AddressWatch, DHCP_TIMEOUT_SECS, Next,
    StationRetry, lease_options, leases,
};
use heapless::String;
use static_cell::StaticCell;

use crate::chat::SLOTS;

/// The network the chat is served on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Network {
    Down,
    /// Joined the router, with this address from its DHCP server.
    Station(Ipv4Addr),
    /// The board's own access point, at [`ACCESS_POINT_ADDRESS`].
    AccessPoint,
}

impl Network {
    pub fn is_up(&self) -> bool {
        !matches!(self, Network::Down)
    }
}

/// Chat listeners and the DHCP server each hold a receiver.
const RECEIVERS: usize = SLOTS + 1;

pub static NETWORK: Watch<CriticalSectionRawMutex, Network, RECEIVERS> =
    Watch::new_with(Network::Down);

pub type NetworkReceiver = Receiver<'static, CriticalSectionRawMutex, Network, RECEIVERS>;
type NetworkSender = Sender<'static, CriticalSectionRawMutex, Network, RECEIVERS>;

/// How long leaving a router may take before the station tries to join again anyway.
const DISCONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Credentials typed on the console, for the radio task.
static NEW_CREDENTIALS: Signal<CriticalSectionRawMutex, WifiCredentials> = Signal::new();

/// Joins this network next (now, if the radio is connected or connecting elsewhere).
pub fn use_credentials(credentials: WifiCredentials) {
    NEW_CREDENTIALS.signal(credentials);
}

/// Sockets per stack: every chat slot, the DHCP client or server, and the bridge's connection
/// (`connect`: the board as a client). A full socket set panics when a socket is added.
const SOCKETS: usize = SLOTS + 2;

#[derive(Clone, Copy)]
pub struct Stacks {
    pub station: Stack<'static>,
    pub access_point: Stack<'static>,
}

impl Stacks {
    /// The stack that serves `network`.
    pub fn serving(&self, network: Network) -> Option<Stack<'static>> {
        match network {
            Network::Down => None,
            Network::Station(_) => Some(self.station),
            Network::AccessPoint => Some(self.access_point),
        }
    }
}

pub fn stacks(
    station: Interface,
    access_point: Interface,
    seed: u64,
) -> (Stacks, [Runner<'static, Interface>; 2]) {
    static STATION: StaticCell<StackResources<SOCKETS>> = StaticCell::new();
    static ACCESS_POINT: StaticCell<StackResources<SOCKETS>> = StaticCell::new();
    let mut dhcp = DhcpConfig::default();
    dhcp.hostname = String::try_from("espchat").ok();
    let (station, station_runner) = embassy_net::new(
        station,
        embassy_net::Config::dhcpv4(dhcp),
        STATION.init(StackResources::new()),
        seed,
    );
    let (access_point, access_point_runner) = embassy_net::new(
        access_point,
        embassy_net::Config::ipv4_static(StaticConfigV4 {
            address: Ipv4Cidr::new(ACCESS_POINT_ADDRESS, 24),
            // No gateway: a phone on the access point keeps its mobile data for the internet.
            gateway: None,
            dns_servers: Default::default(),
        }),
        ACCESS_POINT.init(StackResources::new()),
        seed.rotate_left(32),
    );
    (
        Stacks {
            station,
            access_point,
        },
        [station_runner, access_point_runner],
    )
}

#[embassy_executor::task(pool_size = 2)]
pub async fn run(mut runner: Runner<'static, Interface>) -> ! {
    runner.run().await
}

/// `SSID` and `PASSWORD` from the build environment, the default before any `wifi` command.
pub fn build_time_credentials() -> Option<WifiCredentials> {
    let ssid = option_env!("SSID").filter(|ssid| !ssid.is_empty())?;
    let password = option_env!("PASSWORD").unwrap_or("");
    let password_ok =
        password.is_empty() || (PASSWORD_MIN..=PASSWORD_MAX).contains(&password.len());
    match (
        String::<SSID_MAX>::try_from(ssid),
        String::try_from(password),
    ) {
        (Ok(ssid), Ok(password)) if password_ok => Some(WifiCredentials { ssid, password }),
        _ => {
            say!(
                "build-time SSID/PASSWORD ignored: SSID 1 to {SSID_MAX} bytes, password {PASSWORD_MIN} to {PASSWORD_MAX}"
            );
            None
        }
    }
}

/// Joins the router with the credentials it has; without any, or when they never worked,
/// opens the access point until new ones come from the console (or, for credentials that
/// never worked, until the router answers them after all).
#[embassy_executor::task]
pub async fn radio(
    mut controller: WifiController<'static>,
    stacks: Stacks,
    ap_ssid: String<32>,
    mut credentials: Option<WifiCredentials>,
) {
    let network = NETWORK.sender();
    loop {
        let next = match &credentials {
            None => {
                say!("no wifi credentials; send: wifi <ssid> <password>");
                access_point(&mut controller, &ap_ssid, None, &network).await
            }
            Some(current) => {
                match station(&mut controller, stacks.station, current, &network).await {
                    Some(new) => new,
                    None => {
                        say!("wifi: giving up on \"{}\" for now", current.ssid);
                        access_point(&mut controller, &ap_ssid, Some(current), &network).await
                    }
                }
            }
        };
        credentials = Some(next);
    }
}

/// Keeps the station connected. Returns new credentials from the console, or `None` when the
/// router never answered and the access point should take over.
async fn station(
    controller: &mut WifiController<'static>,
    stack: Stack<'static>,
    credentials: &WifiCredentials,
    network: &NetworkSender,
) -> Option<WifiCredentials> {
    let config = match station_config(credentials) {
        Ok(config) => config,
        Err(error) => {
            say!("wifi: {error}");
            return None;
        }
    };
    if let Err(error) = controller.set_config(&Config::Station(config)) {
        say!("wifi: cannot configure the station: {error:?}");
        return None;
    }
    let mut retry = StationRetry::new();
    loop {
        say!("wifi connecting to \"{}\"", credentials.ssid);
        let failed = match select(controller.connect_async(), NEW_CREDENTIALS.wait()).await {
            Either::Second(new) => {
                let _ = controller.disconnect_async().await;
                return Some(new);
            }
            Either::First(Ok(_)) => {
                retry.connected();
                match connected(controller, stack, network).await {
                    Ended::NewCredentials(new) => {
                        let _ = controller.disconnect_async().await;
                        return Some(new);
                    }
                    Ended::RouterLost => {
                        say!("wifi disconnected");
                        continue;
                    }
                    Ended::NoAddress => {
                        // Bounded: a radio that already dropped the link may not report it.
                        let _ =
                            with_timeout(DISCONNECT_TIMEOUT, controller.disconnect_async()).await;
                        continue;
                    }
                }
            }
            Either::First(Err(error)) => error,
        };
        say!("wifi: could not connect: {failed:?}");
        match retry.failed() {
            Next::AccessPoint => return None,
            Next::Retry { after_secs } => {
                if let Either::Second(new) =
                    select(Timer::after_secs(after_secs.into()), NEW_CREDENTIALS.wait()).await
                {
                    return Some(new);
                }
            }
        }
    }
}

/// How the station's time on the router ended.
enum Ended {
    /// New credentials came from the console.
    NewCredentials(WifiCredentials),
    /// The router dropped the association (rebooting, out of range).
    RouterLost,
    /// Associated, but DHCP never gave an address: still associated, so disconnect first.
    NoAddress,
}

/// While the station is associated: announces its address when DHCP gives one and again when a
/// renewal brings another (host tools retarget to it), says when the lease is lost, and gives
/// up when DHCP does not answer (`espchat_records::AddressWatch`).
async fn connected(
    controller: &WifiController<'static>,
    stack: Stack<'static>,
    network: &NetworkSender,
) -> Ended {
    let watch = async {
        let mut watch = AddressWatch::associated(Instant::now().as_secs());
        loop {
            let address = stack.config_v4().map(|config| config.address.address());
            match watch.look(Instant::now().as_secs(), address) {
                Some(AddressNews::Got(address)) => {
                    announce(address);
                    network.send(Network::Station(address));
                }
                Some(AddressNews::Lost(address)) => {
                    say!("lost ip: {address} (the DHCP lease ended)");
                    network.send(Network::Down);
                }
                Some(AddressNews::GiveUp) => {
                    say!("wifi: no address from DHCP in {DHCP_TIMEOUT_SECS} s; joining again");
                    return;
                }
                None => {}
            }
            // Without an address, an address coming up ends the wait at once; with one,
            // a renewal or a loss is seen within a second.
            if address.is_none() {
                let _ = select(stack.wait_config_up(), Timer::after_secs(1)).await;
            } else {
                Timer::after_secs(1).await;
            }
        }
    };
    let end = select3(
        watch,
        controller.wait_for_disconnect_async(),
        NEW_CREDENTIALS.wait(),
    )
    .await;
    network.send(Network::Down);
    match end {
        Either3::First(()) => Ended::NoAddress,
        Either3::Second(_) => Ended::RouterLost,
        Either3::Third(new) => Ended::NewCredentials(new),
    }
}

/// The lines a host tool finds the chat server by (docs/contract.md §4).
fn announce(address: Ipv4Addr) {
    say!("got ip: {address}");
    say!("listening on {address}:{PORT}");
}

/// The address lines again, for the `ip` and `status` commands: a host tool that opened the
/// console after the board came up missed them.
pub fn say_address() {
    match NETWORK.try_get() {
        Some(Network::Station(address)) => announce(address),
        Some(Network::AccessPoint) => announce(ACCESS_POINT_ADDRESS),
        Some(Network::Down) | None => say!("no ip yet: wifi is not connected"),
    }
}

fn station_config(credentials: &WifiCredentials) -> Result<StationConfig, &'static str> {
    let ssid = credentials
        .ssid
        .as_str()
        .try_into()
        .map_err(|_| "the SSID is not valid")?;
    let authentication = if credentials.password.is_empty() {
        AuthenticationMethodConfig::Open
    } else {
        AuthenticationMethodConfig::Wpa2Personal(
            credentials
                .password
                .as_str()
                .try_into()
                .map_err(|_| "the password is not valid")?,
        )
    };
    Ok(StationConfig::default()
        .with_ssid(ssid)
        .with_authentication(authentication))
}

/// Runs the open access point until credentials come from the console, and returns them.
/// With stored credentials that did not work (`stored`), the station runs beside the access
/// point and tries them again now and then (`espchat_records::AccessPointRetry`); when the
/// router answers, they are returned and the station takes over.
async fn access_point(
    controller: &mut WifiController<'static>,
    ssid: &str,
    stored: Option<&WifiCredentials>,
    network: &NetworkSender,
) -> WifiCredentials {
    let station = stored.and_then(|credentials| station_config(credentials).ok());
    let started = ssid
        .try_into()
        .map_err(|_| "bad SSID")
        .map(|ssid| {
            AccessPointConfig::default()
                .with_ssid(ssid)
                .with_authentication(AuthenticationMethodConfig::Open)
        })
        .and_then(|access_point| {
            let config = match station {
                Some(station) => Config::AccessPointStation(station, access_point),
                None => Config::AccessPoint(access_point),
            };
            controller
                .set_config(&config)
                .map_err(|_| "the radio refused the configuration")
        });
    match started {
        Ok(()) => {
            say!("access point \"{ssid}\" (open network) started");
            announce(ACCESS_POINT_ADDRESS);
            network.send(Network::AccessPoint);
        }
        Err(error) => say!("wifi: cannot start the access point: {error}"),
    }
    let retry_router = async {
        let Some(credentials) = stored.filter(|_| started.is_ok()) else {
            return core::future::pending().await;
        };
        let mut retry = AccessPointRetry::new();
        loop {
            Timer::after_secs(retry.next_delay_secs().into()).await;
            say!(
                "wifi: trying \"{}\" again (the access point stays up)",
                credentials.ssid
            );
            if controller.connect_async().await.is_ok() {
                return credentials.clone();
            }
        }
    };
    let credentials = match select(NEW_CREDENTIALS.wait(), retry_router).await {
        Either::First(new) => new,
        Either::Second(router_is_back) => {
            say!(
                "wifi: \"{}\" answers; leaving the access point",
                router_is_back.ssid
            );
            // The station joins again on its own (station-only) configuration.
            let _ = with_timeout(DISCONNECT_TIMEOUT, controller.disconnect_async()).await;
            router_is_back
        }
    };
    network.send(Network::Down);
    credentials
}

/// Leases 192.168.4.50 and up to the access point's clients, so they need no manual setup
/// (the table's sizing and the lease time: `espchat_records::leases`).
#[embassy_executor::task]
pub async fn dhcp_server(stack: Stack<'static>) {
    const SERVER_PORT: u16 = 67;
    const CLIENT_PORT: u16 = 68;
    let Some(mut network) = NETWORK.receiver() else {
        say!("dhcp server: no network receiver left");
        return;
    };
    let mut leases = leases(|| Instant::now().as_secs());
    let options = lease_options();
    let mut rx_meta = [PacketMetadata::EMPTY; 4];
    let mut tx_meta = [PacketMetadata::EMPTY; 4];
    let mut rx_buf = [0u8; 1024];
    let mut tx_buf = [0u8; 1024];
    let mut request_buf = [0u8; 576];
    let mut reply_buf = [0u8; 576];
    loop {
        network
            .get_and(|network| *network == Network::AccessPoint)
            .await;
        let mut socket =
            UdpSocket::new(stack, &mut rx_meta, &mut rx_buf, &mut tx_meta, &mut tx_buf);
        if socket.bind(SERVER_PORT).is_err() {
            say!("dhcp server: port {SERVER_PORT} is taken");
            return;
        }
        loop {
            let received = match select(socket.recv_from(&mut request_buf), network.changed()).await
            {
                Either::First(Ok((len, _))) => len,
                Either::First(Err(_)) => continue,
                Either::Second(_) => break,
            };
            let Ok(request) = Packet::decode(&request_buf[..received]) else {
                continue;
            };
            let mut option_buf = Options::buf();
            let Some(reply) = leases.handle_request(&mut option_buf, &options, &request) else {
                continue;
            };
            // RFC 2131 4.1: unicast only to a client that already has its address.
            let to = if !request.ciaddr.is_unspecified() && !request.broadcast {
                request.ciaddr
            } else {
                Ipv4Addr::BROADCAST
            };
            if let Ok(bytes) = reply.encode(&mut reply_buf) {
                let _ = socket.send_to(bytes, (to, CLIENT_PORT)).await;
            }
        }
    }
}
