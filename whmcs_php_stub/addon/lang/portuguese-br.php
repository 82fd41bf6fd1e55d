<?php
/**
 * As palavras do vipgate na área administrativa do WHMCS em português do Brasil (o idioma
 * "portuguese-br" do administrador; também para "portuguese-pt"): a página dele (Addons >
 * vipgate), o formulário de configurações e as mensagens de Activate e Deactivate (Setup > Addon
 * Modules). %s são os valores, na ordem.
 */

if (!defined('WHMCS')) {
    die('This file cannot be accessed directly');
}

$_ADDONLANG = [
    'stub_version' => 'Versão do stub',
    'settings' => 'Configurações',
    'settings_not_entered' => 'ainda não preenchidas: Setup > Addon Modules > vipgate > Configure',
    'bridge' => 'Ponte',
    'bridge_answers' => 'A ponte responde',
    'answers_yes' => 'sim (HTTP %s)',
    'answers_no' => 'não: %s',
    'bridge_version' => 'Versão da ponte',
    'not_reported' => 'não informada',
    'deliveries' => 'Entregas',
    'paused_until' => 'pausadas até %s UTC depois de uma que a ponte não aceitou',
    'events_waiting' => 'Eventos à espera',
    'oldest_from' => '%s, o mais antigo de %s UTC',
    'events_rejected' => 'Eventos recusados',
    'rejected_kept' => '%s (guardados por 30 dias em mod_vipgate_spool; veja vipgate check)',
    'outbox' => 'Fila de saída',
    'outbox_unreadable' => 'não pode ser lida: %s',
    'also_installed' => 'Também instalado',
    'other_install' => 'includes/hooks/vipgate.php também está instalado. Ele continua encaminhando os hooks'
        . ' com as próprias configurações até que as do addon sejam salvas, então nada se perde nesse meio'
        . ' tempo (os eventos dele que esperam estão na mesma tabela e o addon os envia); cada hook continua'
        . ' sendo enviado uma vez. Depois de salvá-las, apague includes/hooks/vipgate.php,'
        . ' includes/hooks/_vipgate_stub.php e includes/hooks/_vipgate_config.php.',
    'open_admin_page' => 'Abrir a página de administração do vipgate',
    'problem_unreadable' => 'não foi possível ler as configurações do addon: %s',
    'problem_not_filled_in' => 'o módulo addon está ativo, mas a URL da ponte (http:// ou https://) e o Segredo'
        . ' do webhook (whsec_...) não estão preenchidos: nada é enviado à ponte (os eventos aguardam em'
        . ' mod_vipgate_spool); preencha-os em Setup > Addon Modules > vipgate > Configure',
    'problem_secret_unusable' => 'o Segredo do webhook do addon não pode ser usado: não é um segredo whsec_,'
        . ' nem depois de decifrado com o DecryptPassword do WHMCS: nada é enviado à ponte (os eventos'
        . ' aguardam em mod_vipgate_spool); preencha o segredo que o vipgate install-stub --addon imprimiu em'
        . ' Setup > Addon Modules > vipgate > Configure',
    // Setup > Addon Modules: o módulo, o formulário de configurações (vipgate_config()), Activate e Deactivate
    'module_description' => 'Mantém o grupo VIP para os clientes em dia e controla a abertura de chamados'
        . ' pela situação das faturas: encaminha os hooks do WHMCS para a ponte do vipgate.',
    'field_bridge_url' => 'URL da ponte',
    'field_bridge_url_help' => 'o vipgate como o WHMCS o alcança ([bridge] public_url), por exemplo'
        . ' https://vipgate.example.com',
    'field_secret' => 'Segredo do webhook',
    'field_secret_help' => 'whsec_..., impresso pelo vipgate install-stub --addon',
    'field_fail_open' => 'Permitir chamados sem resposta',
    'field_fail_open_help' => 'Quando o vipgate não responde a tempo, o chamado é permitido (desmarcado: recusado'
        . ' com uma mensagem curta)',
    'field_connect_timeout_ms' => 'Tempo limite de conexão (ms)',
    'field_connect_timeout_ms_help' => 'no máximo 1000',
    'field_timeout_ms' => 'Tempo limite (ms)',
    'field_timeout_ms_help' => 'cada entrega à ponte, no máximo 2000',
    'field_validation_timeout_ms' => 'Tempo limite da verificação de chamados (ms)',
    'field_validation_timeout_ms_help' => 'TicketOpenValidation, no máximo 1500',
    'field_panel_timeout_ms' => 'Tempo limite dos painéis (ms)',
    'field_panel_timeout_ms_help' => 'os painéis do vipgate nas páginas do WHMCS, no máximo 1000',
    'field_precron_timeout_ms' => 'Espera do cron (ms)',
    'field_precron_timeout_ms_help' => 'quanto o PreCronJob espera pela reconciliação, no mínimo 1000',
    'activate_failed' => 'o vipgate não conseguiu criar as tabelas dele (mod_vipgate_spool, mod_vipgate_state)'
        . ' no banco de dados do WHMCS: %s',
    'activated' => 'O vipgate está ativo. Agora abra Configure, preencha a URL da ponte e o Segredo do webhook'
        . ' (o vipgate install-stub --addon imprimiu os dois), marque os papéis de admin que podem abrir a'
        . ' página dele e clique em Save Changes.',
    'activated_waiting' => '%s evento(s) guardado(s) de antes aguardam em mod_vipgate_spool: são enviados'
        . ' assim que as configurações forem salvas.',
    'deactivate_failed' => 'o vipgate não conseguiu registrar a desativação no banco de dados do WHMCS'
        . ' (mod_vipgate_state), então os hooks dele continuariam: %s',
    'deactivated' => 'O vipgate está desativado: os hooks dele não encaminham mais nada. Os dados ficam no banco'
        . ' de dados do WHMCS: mod_vipgate_spool (%s evento(s) à espera, %s recusado(s)) e mod_vipgate_state;'
        . ' ativar o módulo de novo envia o que estiver à espera (confira então as configurações em'
        . ' Configure). Para apagar os dados de vez: DROP TABLE mod_vipgate_spool, mod_vipgate_state.',
];
